"""OCI distribution client: pull and push by digest, verifying every blob (stdlib HTTP only).

Loopback registries are spoken to over plain HTTP; others over HTTPS.  Anonymous access only.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from envtool._util.digest import sha256_bytes
from envtool._util.record import dataclass
from envtool.errors import ImageNotFound, InputError, RuntimeFailure, StoreError
from envtool.image import oci
from envtool.image.store import Image, Store
from envtool.spec.imageref import ImageRef, InvalidImageRef

DOCKER_HUB_API = "registry-1.docker.io"      # where docker.io/… references are served from
ACCEPT = ", ".join([oci.MANIFEST, oci.INDEX, oci.DOCKER_MANIFEST,
                    "application/vnd.docker.distribution.manifest.list.v2+json"])


class RegistryError(RuntimeFailure):
    code = "registry"


@dataclass(frozen=True)
class Ref:
    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def reference(self) -> str:
        return self.digest or self.tag or "latest"

    @property
    def base(self) -> str:
        host = self.registry.split(":")[0]
        scheme = "http" if host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.") else "https"
        api = DOCKER_HUB_API if self.registry in ("docker.io", "index.docker.io") else self.registry
        return f"{scheme}://{api}/v2/{self.repository}"

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}" + (f"@{self.digest}" if self.digest else f":{self.tag or 'latest'}")


def parse_ref(text: str) -> Ref:
    try:
        r = ImageRef.parse(text)
    except InvalidImageRef:
        r = None
    if r is None or r.kind != "registry":
        raise InputError(f"invalid registry reference {text!r}",
                         hint="use REGISTRY/REPOSITORY[:TAG][@DIGEST], e.g. localhost:5000/team/app:1.2")
    r = r.normalized()                      # redis:7 → docker.io/library/redis:7, as Docker reads it
    assert r.registry is not None
    return Ref(r.registry, r.repository, r.tag, r.digest)


# anonymous bearer tokens (Docker Hub, ghcr.io, quay.io …), per registry and repository
_TOKENS: dict[tuple[str, str], str] = {}


def _challenge(ref: Ref, header: str) -> str | None:
    """Answer a `WWW-Authenticate: Bearer realm=…,service=…,scope=…` challenge with an anonymous
    token from the realm (the distribution token protocol); None when it is not a bearer challenge."""
    import re

    if not header.lower().startswith("bearer "):
        return None
    params = dict(re.findall(r'(\w+)="([^"]*)"', header))
    realm = params.get("realm")
    # the realm is the registry's say: https only (http for a registry on loopback, as it is spoken
    # to itself), so a registry cannot send envtool's requests to a plain-http address elsewhere
    if not realm or urllib.parse.urlsplit(realm).scheme != "https" and not ref.base.startswith("http://"):
        return None
    query = {"service": params.get("service", ""), "scope": params.get("scope") or f"repository:{ref.repository}:pull"}
    url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode({k: v for k, v in query.items() if v})
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            doc = json.loads(r.read())
    except (OSError, ValueError) as e:
        raise RegistryError(f"{ref}: the registry's token service at {realm} failed: {e}") from None
    token = doc.get("token") or doc.get("access_token")
    if not isinstance(token, str):
        raise RegistryError(f"{ref}: the registry's token service gave no token")
    _TOKENS[(ref.registry, ref.repository)] = token
    return token


def _open(ref: Ref | None, req: urllib.request.Request, timeout: float) -> Any:
    """urlopen with the repository's bearer token, answering one challenge if the registry asks; the
    token is never sent on to where a blob redirects (a CDN or S3 needs none)."""
    opener = urllib.request.build_opener()
    token = _TOKENS.get((ref.registry, ref.repository)) if ref else None
    if token:
        req.add_unredirected_header("Authorization", f"Bearer {token}")
    try:
        return opener.open(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code != 401 or ref is None:
            raise
        token = _challenge(ref, e.headers.get("WWW-Authenticate", ""))
        if token is None:
            raise
        retry = urllib.request.Request(req.full_url, data=req.data, method=req.get_method(),
                                       headers={k: v for k, v in req.header_items() if k != "Authorization"})
        retry.add_unredirected_header("Authorization", f"Bearer {token}")
        return opener.open(retry, timeout=timeout)


def _request(method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None,
             ref: Ref | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with _open(ref, req, 60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()
    except OSError as e:
        raise RegistryError(f"{method} {url}: {e}", hint="is the registry running and reachable?") from None


def _get_manifest(ref: Ref, reference: str) -> tuple[bytes, str]:
    status, headers, body = _request("GET", f"{ref.base}/manifests/{reference}", headers={"Accept": ACCEPT}, ref=ref)
    if status == 401:
        raise RegistryError(f"{ref}: the registry refused anonymous access (HTTP 401)",
                            hint="envtool pulls anonymously: use a public image or a registry on this network")
    if status == 404:
        raise ImageNotFound(f"{ref}: no such image in the registry")
    if status != 200:
        raise RegistryError(f"GET manifest {ref}: HTTP {status}: {body[:200]!r}")
    return body, headers.get("Content-Type", headers.get("content-type", ""))


def pull(text: str, store: Store) -> Image:
    ref = parse_ref(text)
    body, media = _get_manifest(ref, ref.reference)
    if ref.digest and sha256_bytes(body) != ref.digest:
        raise StoreError(f"{ref}: the registry sent a manifest that does not match {ref.digest}")
    doc: dict[str, Any] = json.loads(body)
    if "manifests" in doc:                                   # an index: pick this machine's image
        entry = next((m for m in doc["manifests"]
                      if (m.get("platform") or {}).get("architecture") in (None, oci.host_arch())), None)
        if entry is None:
            raise ImageNotFound(f"{ref}: no image for {oci.host_arch()}")
        body, media = _get_manifest(ref, entry["digest"])
        if sha256_bytes(body) != entry["digest"]:
            raise StoreError(f"{ref}: manifest {entry['digest']} does not match its digest")
        doc = json.loads(body)
    for d in [doc["config"], *doc["layers"]]:
        if not store.has_blob(d["digest"]):
            _fetch_blob(ref, d["digest"], store)
    store.put_bytes(body)
    image = store.image(sha256_bytes(body))
    store.tag(str(ref) if not ref.digest else f"{ref.registry}/{ref.repository}:pulled", image)
    return image


def _fetch_blob(ref: Ref, digest: str, store: Store) -> None:
    req = urllib.request.Request(f"{ref.base}/blobs/{digest}")
    out, path = store.staging_file()
    h = hashlib.sha256()
    try:
        with _open(ref, req, 300) as r, out:
            while chunk := r.read(1 << 20):
                h.update(chunk)
                out.write(chunk)
    except OSError as e:
        os.unlink(path)
        raise RegistryError(f"GET blob {digest} from {ref}: {e}") from None
    if "sha256:" + h.hexdigest() != digest:
        os.unlink(path)
        raise StoreError(f"blob {digest} from {ref} does not match its digest")
    store.put_file(path, digest)


def push(store: Store, image: Image, text: str, compress: bool = False) -> tuple[str, int]:
    """Push an image; blobs the registry has are skipped.  Returns (manifest digest, blobs uploaded).

    By default the stored manifest goes up byte for byte (uncompressed layers), so the registry
    serves the very digest envtool.lock names and exports reference.  compress: gzip layers for a
    smaller transfer, which makes a manifest (and digest) of its own."""
    import tempfile

    from envtool.image.save import _gzip_blob

    ref = parse_ref(text)
    uploaded = 0
    cfg = store.read_blob(image.config_digest)
    layers = []
    with tempfile.TemporaryDirectory(dir=store.tmp_dir) as tmp:
        for layer in image.layers:
            store.verify_blob(layer.digest)
            if compress and not layer.media_type.endswith("gzip"):
                path, size, digest = _gzip_blob(store.blob_path(layer.digest), tmp)
                media = oci.LAYER_GZIP
            else:
                path, size, digest, media = str(store.blob_path(layer.digest)), layer.size, layer.digest, layer.media_type
            uploaded += _upload(ref, digest, path)
            layers.append(oci.Descriptor(media, digest, size))
        cfg_path = os.path.join(tmp, "config")
        with open(cfg_path, "wb") as f:
            f.write(cfg)
        uploaded += _upload(ref, image.config_digest, cfg_path)
    manifest = (oci.manifest_document(oci.Descriptor(oci.CONFIG, image.config_digest, len(cfg)), layers) if compress
                else store.read_blob(image.manifest_digest))
    status, _, body = _request("PUT", f"{ref.base}/manifests/{ref.tag or 'latest'}", manifest,
                               {"Content-Type": oci.MANIFEST})
    if status not in (200, 201):
        raise RegistryError(f"PUT manifest {ref}: HTTP {status}: {body[:200]!r}")
    return sha256_bytes(manifest), uploaded


def _upload(ref: Ref, digest: str, path: str) -> int:
    status, _, _ = _request("HEAD", f"{ref.base}/blobs/{digest}")
    if status == 200:
        return 0                                           # the registry has it
    status, headers, body = _request("POST", f"{ref.base}/blobs/uploads/")
    location = headers.get("Location") or headers.get("location")
    if status != 202 or not location:
        raise RegistryError(f"start upload to {ref}: HTTP {status}: {body[:200]!r}")
    if location.startswith("/"):
        location = ref.base.split("/v2/")[0] + location
    sep = "&" if "?" in location else "?"
    with open(path, "rb") as f:
        data = f.read()
    status, _, body = _request("PUT", f"{location}{sep}digest={digest}", data,
                               {"Content-Type": "application/octet-stream"})
    if status not in (201, 204):
        raise RegistryError(f"upload {digest} to {ref}: HTTP {status}: {body[:200]!r}")
    return 1
