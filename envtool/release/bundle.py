"""Release bundles: one file holding a resolved stack, its lock and every image it runs.

    release.json     {"format", "project", "environments", "stack", "lock", "files", "images"}
    stack.json       the resolved stack: the base and every environment, interpolated, env_files folded
    envtool.lock     the lock the images were built from, byte for byte
    oci-layout, index.json, blobs/sha256/<hex>   an OCI image layout with every image (+ files.tar)

The release id is the digest of release.json, which names every other part by digest; the
manifests name their configs and layers by digest.  So one id covers every byte that runs, and the
same project, lock and images give the same id on any machine and any day (no time stamps inside).
Reading verifies each part as it streams by and refuses anything that is not accounted for.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import time
import zlib
from pathlib import Path
from typing import IO, Any

from envtool._util.digest import canonical_json, digest_hex, sha256_bytes
from envtool._util.record import dataclass, field
from envtool.errors import InputError
from envtool.image import oci
from envtool.image.store import Image, Layer, Store

FORMAT = "envtool-bundle/1"
_BLOB = re.compile(r"^blobs/sha256/([0-9a-f]{64})$")
_PARTS = ("release.json", "stack.json", "envtool.lock", "oci-layout", "index.json")


class BundleError(InputError):
    code = "bundle-invalid"


@dataclass
class Release:
    """The parts of a release that are not images."""

    project: str
    stack: dict[str, Any]                  # {"base": {...}, "environments": {name: {...}}}
    lock: bytes
    images: dict[str, str]                 # image reference as written → manifest digest
    files: str | None = None               # digest of files.tar (bind-mount sources), if any
    stack_bytes: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.stack_bytes = canonical_json(self.stack)

    @property
    def document(self) -> dict[str, Any]:
        return {"format": FORMAT, "project": self.project,
                "environments": sorted(self.stack.get("environments", {})),
                "stack": sha256_bytes(self.stack_bytes), "lock": sha256_bytes(self.lock),
                "files": self.files, "images": dict(sorted(self.images.items()))}

    @property
    def id(self) -> str:
        return sha256_bytes(canonical_json(self.document))

    @property
    def lock_digest(self) -> str:
        return sha256_bytes(self.lock)

    def config_for(self, env: str | None) -> dict[str, Any]:
        if env is None:
            return dict(self.stack["base"])
        envs = self.stack.get("environments", {})
        if env not in envs:
            raise BundleError(f"the bundle has no environment {env!r}",
                              hint="it has: " + (", ".join(sorted(envs)) or "none; make it with --env"))
        return dict(envs[env])


def frozen_config(config: dict[str, Any], env_files: dict[str, dict[str, str]]) -> dict[str, Any]:
    """A stack as it will run elsewhere: env_file contents folded into environment (environment
    wins, as in Compose), no overlays and no [hosts] left."""
    out = json.loads(json.dumps(config))
    out.pop("environments", None)
    out.pop("hosts", None)              # where it runs is not part of what runs: the same release id
    for name, svc in (out.get("services") or {}).items():
        merged = dict(env_files.get(name, {}))
        merged.update(svc.get("environment") or {})
        svc["environment"] = dict(sorted(merged.items()))
        svc.pop("env_file", None)
    return out


# ---- writing ------------------------------------------------------------------------------------
def _entry(tar: tarfile.TarFile, name: str, data: bytes | None = None, path: Path | None = None) -> None:
    ti = tarfile.TarInfo(name)
    ti.mtime, ti.mode, ti.uid, ti.gid, ti.uname, ti.gname = 0, 0o644, 0, 0, "", ""
    if path is not None:
        ti.size = path.stat().st_size
        with open(path, "rb") as f:
            tar.addfile(ti, f)
    else:
        ti.size = len(data or b"")
        tar.addfile(ti, io.BytesIO(data or b""))


def image_blobs(store: Store, image: Image) -> list[str]:
    return [image.manifest_digest, image.config_digest, *(layer.digest for layer in image.layers)]


def release_blobs(release: Release, store: Store) -> list[str]:
    """Every blob the release needs: each image's manifest, config and layers, and its files."""
    digests: list[str] = []
    for _ref, digest in sorted(release.images.items()):
        for d in image_blobs(store, store.image(digest)):
            if d not in digests:
                digests.append(d)
    if release.files:
        digests.append(release.files)
    return digests


def write(release: Release, store: Store, output: Path | IO[bytes], compress: bool = True, reporter: Any = None,
          skip: frozenset[str] = frozenset()) -> str:
    """Write the bundle (atomically, or to an open stream) and return the release id.  `skip`: blobs
    the receiver already holds (a *thin* bundle for `deploy`: read it with thin=True)."""
    manifests = [oci.Descriptor(oci.MANIFEST, digest, store.blob_path(digest).stat().st_size,
                                {oci.REF_NAME: ref}).to_json() for ref, digest in sorted(release.images.items())]
    index = {"schemaVersion": 2, "mediaType": oci.INDEX, "manifests": manifests}
    digests = [d for d in release_blobs(release, store) if d not in skip]
    if not isinstance(output, Path):
        _write_tar(release, store, output, index, digests, compress, reporter, "deploy")
        return release.id
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        with open(tmp, "wb") as raw:
            _write_tar(release, store, raw, index, digests, compress, reporter, output.name)
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return release.id


def _write_tar(release: Release, store: Store, raw: IO[bytes], index: dict[str, Any], digests: list[str],
               compress: bool, reporter: Any, label: str) -> None:
    out: IO[bytes] = gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0, compresslevel=1) \
        if compress else raw   # type: ignore[assignment]
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        _entry(tar, "release.json", canonical_json(release.document))
        _entry(tar, "stack.json", release.stack_bytes)
        _entry(tar, "envtool.lock", release.lock)
        _entry(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _entry(tar, "index.json", canonical_json(index))
        for i, d in enumerate(digests, 1):
            size = store.blob_path(d).stat().st_size
            if reporter:
                reporter.step(label, i, len(digests), f"{d[:19]} ({size / 1e6:.1f} MB)")
            started = time.monotonic()
            store.verify_blob(d)
            _entry(tar, f"blobs/sha256/{digest_hex(d)}", path=store.blob_path(d))
            if reporter:
                reporter.done(label, d, False, time.monotonic() - started)
    if compress:
        out.close()


# ---- reading ------------------------------------------------------------------------------------
def read(path: Path, store: Store, thin: bool = False) -> Release:
    """Stream the bundle into the store, verifying every part; returns the Release.  Blobs enter the
    store only under the digest they hash to, so a refused bundle leaves nothing usable behind.
    thin: blobs left out of the bundle (`deploy` sends only what this store lacks) must be in the
    store already, where they are verified against their digest too."""
    if not path.is_file():
        raise BundleError(f"no bundle at {path}", hint="make one with `envtool bundle -o FILE`")
    parts: dict[str, bytes] = {}
    blobs: set[str] = set()
    try:
        with tarfile.open(path, mode="r|*") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                m = _BLOB.match(name)
                if not member.isfile() or (m is None and name not in _PARTS) or name in parts:
                    raise BundleError(f"{path}: unexpected entry {member.name!r}: this is not a bundle "
                                      "envtool wrote, or it was altered")
                f = tar.extractfile(member)
                assert f is not None
                if m is None:
                    parts[name] = f.read(4 << 20)
                    continue
                digest = "sha256:" + m[1]
                _import_blob(f, digest, store, path)
                blobs.add(digest)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise BundleError(f"{path}: not a readable bundle: {e}", hint="copy the file again") from None
    return _verify(path, parts, blobs, store, thin)


def release_blobs_named(release: Release, store: Store) -> set[str]:
    """The blobs a release names that this store can say anything about (manifests it holds, and
    what those manifests name).  Nothing is trusted yet: the caller hashes each one."""
    out: set[str] = set()
    for digest in release.images.values():
        out.add(digest)
        if store.has_blob(digest):
            try:
                out.update(image_blobs(store, store.image(digest)))
            except Exception:  # noqa: BLE001 - an unreadable manifest: _verify says so
                pass
    if release.files:
        out.add(release.files)
    return out


def _intact(store: Store, digest: str) -> bool:
    if not store.has_blob(digest):
        return False
    try:
        store.verify_blob(digest)
        return True
    except Exception:  # noqa: BLE001 - a damaged blob in our own store is as good as missing
        return False


def _import_blob(f: IO[bytes], digest: str, store: Store, path: Path) -> None:
    if store.has_blob(digest):
        h = hashlib.sha256()
        while chunk := f.read(1 << 20):
            h.update(chunk)
        if "sha256:" + h.hexdigest() != digest:
            raise BundleError(f"{path}: blob {digest} does not match its digest: the bundle was altered")
        return
    out, tmp = store.staging_file()
    h = hashlib.sha256()
    with out:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            out.write(chunk)
    if "sha256:" + h.hexdigest() != digest:
        os.unlink(tmp)
        raise BundleError(f"{path}: blob {digest} does not match its digest: the bundle was altered",
                          hint="refusing to run it; make the bundle again from the project")
    store.put_file(tmp, digest)


def _verify(path: Path, parts: dict[str, bytes], blobs: set[str], store: Store, thin: bool = False) -> Release:
    def altered(what: str) -> BundleError:
        return BundleError(f"{path}: {what}: the bundle was altered or is damaged",
                           hint="refusing to run it; make the bundle again from the project")

    for name in ("release.json", "stack.json", "envtool.lock"):
        if name not in parts:
            raise BundleError(f"{path}: {name} is missing: this is not an envtool bundle")
    try:
        doc = json.loads(parts["release.json"])
        stack = json.loads(parts["stack.json"])
    except ValueError as e:
        raise altered(f"unreadable JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BundleError(f"{path}: unknown bundle format {doc.get('format') if isinstance(doc, dict) else doc!r}",
                          hint=f"this envtool reads {FORMAT}")
    release = Release(str(doc.get("project")), stack, parts["envtool.lock"], dict(doc.get("images") or {}),
                      doc.get("files"))
    if canonical_json(release.document) != parts["release.json"] or release.stack_bytes != parts["stack.json"]:
        raise altered("release.json does not describe the stack, lock and images it came with")
    if thin:        # what the sender left out, because this store said it holds it: checked here
        blobs = blobs | {d for d in release_blobs_named(release, store) if d not in blobs and _intact(store, d)}
    for ref, digest in release.images.items():
        image = _image(store, digest, blobs, altered)
        for d in image_blobs(store, image):
            if d not in blobs:
                raise altered(f"image {ref}: blob {d} is missing")
    if release.files and release.files not in blobs:
        raise altered(f"files {release.files} are missing")
    return release


def _image(store: Store, digest: str, blobs: set[str], altered: Any) -> Image:
    if digest not in blobs:
        raise altered(f"manifest {digest} is missing")
    try:
        return store.image(digest)
    except Exception as e:  # noqa: BLE001 - any unreadable manifest is an altered bundle
        raise altered(f"manifest {digest} is unreadable ({e})") from None


def files_layer(digest: str, size: int) -> Layer:
    return Layer(digest, digest, size, oci.LAYER_TAR)


def files_blob(store: Store, directory: Path, configs: list[dict[str, Any]]) -> str | None:
    """The project files that bind mounts read, as one deterministic tar in the store."""
    from envtool.image.layer import LayerWriter, Owner, add_copy

    sources = sorted({os.path.normpath(v["source"]) for cfg in configs for svc in cfg.get("services", {}).values()
                      for v in svc.get("volumes", []) if v.get("type") == "bind" and v.get("source")})
    if not sources:
        return None
    w = LayerWriter(0)
    for rel in sources:
        full = directory / rel
        if full.exists():
            add_copy(w, str(full), rel, Owner(), None, [])
    out, tmp = store.staging_file()
    with out:
        w.write(out)
    return store.put_file(tmp)[0]


def unpack_files(store: Store, release: Release) -> Path:
    """Where a bundle's bind-mount sources live on this host: unpacked once per release."""
    import shutil
    import tempfile

    from envtool.image.extract import extract_layer

    target = release_dir(store, release.id)
    target.mkdir(parents=True, exist_ok=True)
    if release.files and not (target / "rootfs").is_dir():
        staging = Path(tempfile.mkdtemp(dir=store.tmp_dir, prefix="files-"))
        try:
            blob = store.blob_path(release.files)
            with open(blob, "rb") as f:
                extract_layer(f, staging, files_layer(release.files, blob.stat().st_size))
            os.rename(staging / "rootfs", target / "rootfs")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target / "rootfs" if release.files else target


# ---- releases kept on a host (what `envtool rollback` returns to) ---------------------------------
def release_dir(store: Store, rid: str) -> Path:
    """Where a release lives on this host: its unpacked files and its kept parts."""
    return store.root / "releases" / digest_hex(rid)


def kept_document(store: Store, rid: str) -> dict[str, Any] | None:
    """A kept release's release.json as written (unverified: what gc must keep), or None."""
    try:
        doc = json.loads((release_dir(store, rid) / "release.json").read_bytes())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def keep(store: Store, release: Release) -> Path:
    """The release's own parts, kept beside its unpacked files in the store: with the images (in
    the store's blobs) they are all a rollback needs, bundle or project directory long gone."""
    from envtool._util.atomic import write_atomic

    target = release_dir(store, release.id)
    target.mkdir(parents=True, exist_ok=True)
    for name, data in (("stack.json", release.stack_bytes), ("envtool.lock", release.lock),
                       ("release.json", canonical_json(release.document))):
        if not (target / name).exists():
            write_atomic(target / name, data, mode=0o600)
    return target


def kept(store: Store, rid: str) -> Release:
    """A release kept on this host, verified against its id (the parts may have been touched)."""
    where = release_dir(store, rid)
    try:
        doc = json.loads((where / "release.json").read_bytes())
        stack = json.loads((where / "stack.json").read_bytes())
        lock = (where / "envtool.lock").read_bytes()
    except (OSError, ValueError):
        raise BundleError(f"release {rid[:19]} is not kept on this host",
                          hint="deploy it again from its bundle: envtool up --bundle FILE") from None
    release = Release(str(doc.get("project")), stack, lock, dict(doc.get("images") or {}), doc.get("files"))
    if release.id != rid:
        raise BundleError(f"the kept parts of release {rid[:19]} in {where} were altered",
                          hint="deploy it again from its bundle: envtool up --bundle FILE")
    for ref, digest in release.images.items():
        try:
            image = store.image(digest)
        except Exception:  # noqa: BLE001 - gone or unreadable: not runnable
            image = None
        if image is None or not all(store.has_blob(d) for d in image_blobs(store, image)):
            raise BundleError(f"release {rid[:19]}: image {ref} is no longer in the store",
                              hint="deploy it again from its bundle: envtool up --bundle FILE")
    return release
