"""The lock file's model (FORMAT.md): per image, its digests and every input that was resolved."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from envtool.lock import VERSION


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LockedPackage(_Strict):
    name: str
    version: str
    arch: str = ""
    sha256: str = ""


class LockedCopy(_Strict):
    src: str
    dst: str
    digest: str                    # of the copied tree's deterministic layer


class LockedImage(_Strict):
    digest: str                    # OCI manifest digest of the built image
    config: str
    layers: list[str]
    source: str                    # the recipe's `from`
    base: str = ""                 # manifest digest of a registry base
    recipe: str                    # digest of this normalized recipe
    packages: list[LockedPackage] = Field(default_factory=list)
    pip: list[LockedPackage] = Field(default_factory=list)
    copy_: list[LockedCopy] = Field(default_factory=list, alias="copy")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def pins(self) -> dict[str, str]:
        return {p.name.split(":")[0]: p.version for p in self.packages}


class Lock(_Strict):
    version: int = VERSION
    spec: str = ""                 # digest of every normalized recipe together
    images: dict[str, LockedImage] = Field(default_factory=dict)
