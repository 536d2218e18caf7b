"""Content-addressed store in the OCI image layout, plus the cache of unpacked layers.

    $ENVTOOL_ROOT (default /var/lib/envtool)
      store/oci-layout, store/index.json, store/blobs/sha256/<hex>    the OCI layout
      layers/<diff-id hex>/                                          unpacked, read-only lower dirs
      containers/<name>/                                             upper/, work/, rootfs/ per container
      cache/                                                         build-step and seccomp caches
      tmp/                                                           staging, same filesystem

Blobs are written to tmp/ and renamed into place once their digest is known; every read can
verify the digest, so a damaged blob is found before it is used.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from envtool._util.atomic import write_atomic
from envtool._util.digest import DIGEST_RE, digest_hex, sha256_bytes
from envtool._util.record import dataclass
from envtool.errors import ImageNotFound, StoreError
from envtool.image import oci

DEFAULT_ROOT = "/var/lib/envtool"


@dataclass(frozen=True)
class Layer:
    digest: str          # blob digest
    diff_id: str         # digest of the uncompressed tar
    size: int
    media_type: str


@dataclass(frozen=True)
class Image:
    manifest_digest: str
    config_digest: str
    config: oci.ImageConfig
    layers: tuple[Layer, ...]
    created: str = ""

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers)


def _private_dir(root: Path) -> None:
    """The store's root is 0700: below it lie image layers with setuid binaries, containers' upper
    dirs and volumes where a container may plant one (CVE-2021-41091), state and logs holding
    services' environments.  No other host user may walk into any of it."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = root.stat()
    if st.st_uid == os.geteuid() and st.st_mode & 0o077:
        os.chmod(root, 0o700)


class Store:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.layout = self.root / "store"
        self.blobs = self.layout / "blobs" / "sha256"
        self.layers_dir = self.root / "layers"
        self.containers_dir = self.root / "containers"
        self.cache_dir = self.root / "cache"
        self.tmp_dir = self.root / "tmp"
        try:
            _private_dir(self.root)
            for d in (self.blobs, self.layers_dir, self.containers_dir, self.cache_dir, self.tmp_dir):
                d.mkdir(parents=True, exist_ok=True)
        except PermissionError:
            from envtool.errors import HostError

            raise HostError(f"envtool needs root to use the store {self.root} (it is private to root)",
                            hint="run it as root (sudo envtool ...), or set ENVTOOL_ROOT to a directory of "
                                 "your own") from None
        except OSError as e:
            raise StoreError(f"cannot create {e.filename or self.root}: {(e.strerror or str(e)).lower()}",
                             hint="run as root, or set ENVTOOL_ROOT to a writable directory") from None
        if not (self.layout / "oci-layout").exists():
            write_atomic(self.layout / "oci-layout", '{"imageLayoutVersion":"1.0.0"}')
        if not (self.layout / "index.json").exists():
            self._write_index({"schemaVersion": 2, "mediaType": oci.INDEX, "manifests": []})


    # ---- locking ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        fd = os.open(self.layout / ".lock", os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # ---- blobs --------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.blobs / digest_hex(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).exists()

    def put_bytes(self, data: bytes) -> str:
        digest = sha256_bytes(data)
        if not self.has_blob(digest):
            write_atomic(self.blob_path(digest), data)
        return digest

    def put_file(self, path: str | os.PathLike[str], digest: str | None = None) -> tuple[str, int]:
        """Move a staged file (in tmp/) into the store under its digest."""
        if digest is None:
            with open(path, "rb") as f:
                digest = _sha256_file(f)
        size = os.path.getsize(path)
        target = self.blob_path(digest)
        if target.exists():
            os.unlink(path)
        else:
            os.chmod(path, 0o644)
            os.replace(path, target)
        return digest, size

    def staging_file(self, suffix: str = "") -> tuple[IO[bytes], str]:
        import tempfile

        fd, path = tempfile.mkstemp(dir=self.tmp_dir, suffix=suffix)
        return os.fdopen(fd, "wb"), path

    def read_blob(self, digest: str, verify: bool = True) -> bytes:
        try:
            data = self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise StoreError(f"blob {digest} is missing from the store",
                             hint="rebuild or pull the image (envtool build)") from None
        if verify and sha256_bytes(data) != digest:
            raise StoreError(f"blob {digest} does not match its digest: the store is damaged",
                             hint="run `envtool gc` and rebuild the image")
        return data

    def verify_blob(self, digest: str) -> None:
        try:
            with open(self.blob_path(digest), "rb") as f:
                actual = _sha256_file(f)
        except FileNotFoundError:
            raise StoreError(f"blob {digest} is missing from the store") from None
        if actual != digest:
            raise StoreError(f"blob {digest} does not match its digest (found {actual}): the store is damaged",
                             hint="run `envtool gc` and rebuild the image")

    def read_json(self, digest: str) -> Any:
        return json.loads(self.read_blob(digest))

    # ---- images -------------------------------------------------------------------------------
    def write_image(self, config: oci.ImageConfig, layers: list[Layer], created: str,
                    annotations: dict[str, str] | None = None) -> Image:
        cfg_bytes = oci.config_document(config, [layer.diff_id for layer in layers], created)
        cfg_digest = self.put_bytes(cfg_bytes)
        cfg_desc = oci.Descriptor(oci.CONFIG, cfg_digest, len(cfg_bytes))
        man = oci.manifest_document(cfg_desc, [oci.Descriptor(lay.media_type, lay.digest, lay.size)
                                               for lay in layers], annotations)
        man_digest = self.put_bytes(man)
        return Image(man_digest, cfg_digest, config, tuple(layers), created)

    def image(self, manifest_digest: str) -> Image:
        if not DIGEST_RE.match(manifest_digest):
            raise ImageNotFound(f"not an image digest: {manifest_digest!r}")
        if not self.has_blob(manifest_digest):
            raise ImageNotFound(f"image {manifest_digest} is not in the store", hint="run `envtool build`")
        man = self.read_json(manifest_digest)
        cfg_digest = man["config"]["digest"]
        cfg = self.read_json(cfg_digest)
        diff_ids = cfg.get("rootfs", {}).get("diff_ids", [])
        descs = man.get("layers", [])
        if len(diff_ids) != len(descs):
            raise StoreError(f"image {manifest_digest}: {len(descs)} layers but {len(diff_ids)} diff_ids")
        layers = tuple(Layer(d["digest"], diff, int(d["size"]), d["mediaType"])
                       for d, diff in zip(descs, diff_ids, strict=True))
        return Image(manifest_digest, cfg_digest, oci.ImageConfig.from_json(cfg.get("config")), layers,
                     cfg.get("created", ""))

    # ---- names (index.json) ---------------------------------------------------------------------
    def _read_index(self) -> dict[str, Any]:
        try:
            return json.loads((self.layout / "index.json").read_text())
        except (OSError, ValueError) as e:
            raise StoreError(f"cannot read {self.layout / 'index.json'}: {e}") from None

    def _write_index(self, index: dict[str, Any]) -> None:
        write_atomic(self.layout / "index.json", json.dumps(index, indent=2, sort_keys=True) + "\n")

    def tag(self, name: str, image: Image, annotations: dict[str, str] | None = None) -> None:
        with self.locked():
            index = self._read_index()
            manifests = [m for m in index["manifests"]
                         if (m.get("annotations") or {}).get(oci.REF_NAME) != name]
            size = self.blob_path(image.manifest_digest).stat().st_size
            ann = {oci.REF_NAME: name, **(annotations or {})}
            new = oci.Descriptor(oci.MANIFEST, image.manifest_digest, size, ann).to_json()
            if new in index["manifests"]:
                return                   # already so: no rewrite of an index that may hold thousands
            manifests.append(new)
            index["manifests"] = sorted(manifests, key=lambda m: m["annotations"][oci.REF_NAME])
            self._write_index(index)

    def resolve(self, name: str) -> str | None:
        for m in self._read_index()["manifests"]:
            if (m.get("annotations") or {}).get(oci.REF_NAME) == name:
                return str(m["digest"])
        return None

    def tags(self) -> list[tuple[str, str, dict[str, str]]]:
        out = []
        for m in self._read_index()["manifests"]:
            ann = dict(m.get("annotations") or {})
            out.append((ann.get(oci.REF_NAME, ""), m["digest"], ann))
        return out

    # ---- unpacked layers ------------------------------------------------------------------------
    def layer_dir(self, layer: Layer) -> Path:
        return self.layers_dir / digest_hex(layer.diff_id)

    def unpack(self, image: Image) -> list[str]:
        """Lower dirs for the image, bottom first; each layer is unpacked once and shared."""
        return self.unpack_layers(image.layers)

    def unpack_layers(self, layers: tuple[Layer, ...] | list[Layer]) -> list[str]:
        dirs = []
        for layer in layers:
            target = self.layer_dir(layer)
            if not (target / ".envtool-complete").exists():
                from envtool.image.extract import extract_layer  # tarfile only when there is work

                with self.locked():
                    if not (target / ".envtool-complete").exists():
                        import tempfile

                        staging = Path(tempfile.mkdtemp(dir=self.tmp_dir, prefix="layer-"))
                        try:
                            with open(self.blob_path(layer.digest), "rb") as f:
                                extract_layer(f, staging, layer)
                            if target.exists():
                                shutil.rmtree(target)
                            os.rename(staging, target)
                            (target / ".envtool-complete").touch()
                        except BaseException:
                            shutil.rmtree(staging, ignore_errors=True)
                            raise
            dirs.append(str(target / "rootfs"))
        return dirs


def gc(store: Store, keep_manifests: set[str], keep_extra: set[str] | None = None) -> dict[str, int]:
    """Remove blobs and unpacked layers that no tagged image and no image in `keep_manifests`
    (e.g. of running stacks) references, nor `keep_extra` names (blobs that are not images: a
    release's files); returns counts and bytes freed."""
    keep_blobs: set[str] = set(keep_extra or ())
    keep_layers: set[str] = set()
    for digest in keep_manifests | {d for _, d, _ in store.tags()}:
        try:
            image = store.image(digest)
        except (ImageNotFound, StoreError):
            continue
        keep_blobs |= {digest, image.config_digest} | {layer.digest for layer in image.layers}
        keep_layers |= {digest_hex(layer.diff_id) for layer in image.layers}
    freed = blobs = layers = 0
    with store.locked():
        for blob in store.blobs.iterdir():
            if "sha256:" + blob.name not in keep_blobs:
                freed += blob.stat().st_size
                blob.unlink()
                blobs += 1
        for d in store.layers_dir.iterdir():
            if d.name not in keep_layers:
                shutil.rmtree(d, ignore_errors=True)
                layers += 1
        steps = store.cache_dir / "steps"
        for entry in steps.glob("*.json") if steps.is_dir() else []:
            try:
                doc = json.loads(entry.read_text())
            except ValueError:
                doc = {}
            if any("sha256:" + store.blob_path(lay["digest"]).name not in keep_blobs
                   for lay in doc.get("layers", [])):
                entry.unlink()
    return {"blobs": blobs, "layers": layers, "bytes": freed}


def _sha256_file(f: IO[bytes]) -> str:
    import hashlib

    h = hashlib.sha256()
    while block := f.read(1 << 20):
        h.update(block)
    return "sha256:" + h.hexdigest()


