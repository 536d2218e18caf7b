"""oci-archive:<path>: import an OCI image layout archive (tar) into the store, digests verified."""

from __future__ import annotations

import json
import os
import tarfile
from typing import Any

from envtool._util.digest import sha256_bytes
from envtool.errors import ImageNotFound, StoreError
from envtool.image import oci
from envtool.image.store import Image, Store


def import_archive(path: str, store: Store, ref: str | None = None) -> Image:
    """Copy the manifest, config and layers of the (first, or `ref`-named) image into the store."""
    if not os.path.isfile(path):
        raise ImageNotFound(f"OCI archive {path} does not exist")
    try:
        with tarfile.open(path, "r:*") as tar:
            members = {m.name.lstrip("./"): m for m in tar.getmembers() if m.isfile()}

            def read(name: str) -> bytes:
                m = members.get(name)
                f = tar.extractfile(m) if m else None
                if f is None:
                    raise StoreError(f"{path}: {name} is missing from the archive")
                return f.read()

            index = json.loads(read("index.json"))
            manifests = index.get("manifests") or []
            if ref:
                manifests = [m for m in manifests if (m.get("annotations") or {}).get(oci.REF_NAME) == ref]
            if not manifests:
                raise ImageNotFound(f"{path}: no image" + (f" named {ref!r}" if ref else "") + " in the archive")
            desc = manifests[0]
            manifest = _blob(read, desc["digest"])
            doc: dict[str, Any] = json.loads(manifest)
            if doc.get("mediaType") == oci.INDEX or "manifests" in doc:
                inner = next((m for m in doc["manifests"]
                              if (m.get("platform") or {}).get("architecture") in (None, oci.host_arch())), None)
                if inner is None:
                    raise ImageNotFound(f"{path}: no image for {oci.host_arch()} in the archive")
                manifest = _blob(read, inner["digest"])
                doc = json.loads(manifest)
            for d in [doc["config"], *doc["layers"]]:
                if not store.has_blob(d["digest"]):
                    _check_put(store, _blob(read, d["digest"]), d["digest"])
            store.put_bytes(manifest)
    except (tarfile.TarError, ValueError, KeyError) as e:
        raise StoreError(f"{path}: not a valid OCI archive: {e}",
                         hint="create one with `podman save --format oci-archive` or `envtool save`") from None
    return store.image(sha256_bytes(manifest))


def _blob(read: Any, digest: str) -> bytes:
    data: bytes = read("blobs/" + digest.replace(":", "/"))
    if sha256_bytes(data) != digest:
        raise StoreError(f"blob {digest} in the archive does not match its digest")
    return data


def _check_put(store: Store, data: bytes, digest: str) -> None:
    if store.put_bytes(data) != digest:
        raise StoreError(f"blob {digest} does not match its digest")
