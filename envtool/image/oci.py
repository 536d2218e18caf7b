"""OCI image-spec media types and the JSON documents envtool writes and reads."""

from __future__ import annotations

import os
from typing import Any

from envtool._util.digest import canonical_json
from envtool._util.record import dataclass, field

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
REF_NAME = "org.opencontainers.image.ref.name"

GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


def host_arch() -> str:
    machine = os.uname().machine
    return GOARCH.get(machine, machine)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            out["annotations"] = dict(sorted(self.annotations.items()))
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Descriptor:
        return cls(d["mediaType"], d["digest"], int(d["size"]), dict(d.get("annotations") or {}))


@dataclass(frozen=True)
class ImageConfig:
    """The runnable part of an image config (OCI `config` object)."""
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    workdir: str = ""
    user: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.env:
            out["Env"] = list(self.env)
        if self.entrypoint is not None:
            out["Entrypoint"] = list(self.entrypoint)
        if self.cmd is not None:
            out["Cmd"] = list(self.cmd)
        if self.workdir:
            out["WorkingDir"] = self.workdir
        if self.user:
            out["User"] = self.user
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> ImageConfig:
        d = d or {}
        return cls(tuple(d.get("Env") or ()), tuple(d["Entrypoint"]) if d.get("Entrypoint") else None,
                   tuple(d["Cmd"]) if d.get("Cmd") else None, d.get("WorkingDir") or "", d.get("User") or "")

    def env_dict(self) -> dict[str, str]:
        return dict(e.partition("=")[::2] for e in self.env)


def config_document(cfg: ImageConfig, diff_ids: list[str], created: str) -> bytes:
    return canonical_json({
        "architecture": host_arch(), "os": "linux", "created": created, "config": cfg.to_json(),
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    })


def manifest_document(config: Descriptor, layers: list[Descriptor],
                      annotations: dict[str, str] | None = None) -> bytes:
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": MANIFEST, "config": config.to_json(),
                           "layers": [layer.to_json() for layer in layers]}
    if annotations:
        doc["annotations"] = dict(sorted(annotations.items()))
    return canonical_json(doc)
