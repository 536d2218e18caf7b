"""`envtool save`: an image as an OCI image-layout archive (tar) that `podman load` accepts.

Layers are gzip-compressed for interchange (deterministically: no name, mtime 0), so the saved
manifest has its own digest; the config, and with it every diff_id, is the stored one.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from envtool._util.digest import canonical_json, sha256_bytes
from envtool.image import oci
from envtool.image.store import Image, Store


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mtime, ti.mode = len(data), 0, 0o644
    tar.addfile(ti, io.BytesIO(data))


def _gzip_blob(src: Path, tmpdir: str) -> tuple[str, int, str]:
    """(path, size, digest) of the deterministic gzip of a stored layer."""
    fd, path = tempfile.mkstemp(dir=tmpdir)
    h = hashlib.sha256()
    with os.fdopen(fd, "wb") as raw, open(src, "rb") as f:
        class _Hashing(io.RawIOBase):
            def writable(self) -> bool:
                return True

            def write(self, b: bytes) -> int:   # type: ignore[override]
                h.update(b)
                raw.write(b)
                return len(b)

        with gzip.GzipFile(filename="", fileobj=_Hashing(), mode="wb", mtime=0, compresslevel=6) as gz:
            shutil.copyfileobj(f, gz, 1 << 20)
    return path, os.path.getsize(path), "sha256:" + h.hexdigest()


def save(store: Store, image: Image, ref: str, output: Path, compress: bool = True) -> str:
    """Write the archive; returns the saved manifest's digest."""
    cfg = store.read_blob(image.config_digest)
    with tempfile.TemporaryDirectory(dir=store.tmp_dir) as tmp, tarfile.open(output, "w") as tar:
        _add_bytes(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        layers = []
        for layer in image.layers:
            src = store.blob_path(layer.digest)
            store.verify_blob(layer.digest)
            if compress and not layer.media_type.endswith("gzip"):
                path, size, digest = _gzip_blob(src, tmp)
                media = oci.LAYER_GZIP
            else:
                path, size, digest, media = str(src), layer.size, layer.digest, layer.media_type
            tar.add(path, f"blobs/sha256/{digest.split(':')[1]}", filter=_normalize)
            layers.append(oci.Descriptor(media, digest, size))
        _add_bytes(tar, f"blobs/sha256/{image.config_digest.split(':')[1]}", cfg)
        manifest = oci.manifest_document(oci.Descriptor(oci.CONFIG, image.config_digest, len(cfg)), layers)
        man_digest = sha256_bytes(manifest)
        _add_bytes(tar, f"blobs/sha256/{man_digest.split(':')[1]}", manifest)
        index = {"schemaVersion": 2, "mediaType": oci.INDEX, "manifests": [
            oci.Descriptor(oci.MANIFEST, man_digest, len(manifest), {oci.REF_NAME: ref}).to_json()]}
        _add_bytes(tar, "index.json", canonical_json(index))
    return man_digest


def _normalize(ti: tarfile.TarInfo) -> tarfile.TarInfo:
    ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname, ti.mode = 0, 0, 0, "", "", 0o644
    return ti


