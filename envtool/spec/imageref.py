"""One parsed image reference, as a service's `image`, a recipe's `from` or the CLI name one.

    py                                   an [images.py] recipe of the project
    sha256:<hex>                         an image in the store, by manifest digest
    oci-archive:<path>                   an OCI archive file
    localhost:5000/team/app:1.2[@sha256:…]   a registry reference (the first part names a host)
    redis:7, bitnami/redis               a Docker Hub short name (registry None; `normalized`
                                         gives docker.io/library/redis:7 as Docker does)
"""

from __future__ import annotations

import re
from typing import Literal

from envtool._util.record import dataclass, replace

Kind = Literal["recipe", "digest", "oci-archive", "registry"]
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_REF = re.compile(r"(?P<name>[a-z0-9._/-]+?)(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?")


class InvalidImageRef(ValueError):
    pass


@dataclass(frozen=True)
class ImageRef:
    text: str                     # as written
    kind: Kind
    registry: str | None = None   # a registry reference's host[:port]; None for a Docker Hub short name
    repository: str = ""          # the path after the registry (recipe: its name)
    tag: str | None = None
    digest: str | None = None     # sha256:… (kind "digest", or pinned)
    path: str = ""                # oci-archive's file

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        if text.startswith("oci-archive:"):
            return cls(text, "oci-archive", path=text[len("oci-archive:"):])
        if _DIGEST.fullmatch(text):
            return cls(text, "digest", digest=text)
        if ":" not in text and "/" not in text and "@" not in text:
            return cls(text, "recipe", repository=text)
        first, slash, rest = text.partition("/")
        registry = first if slash and ("." in first or ":" in first or first == "localhost") else None
        m = _REF.fullmatch(rest if registry else text)
        if not m or not m["name"] or m["name"].startswith("/") or m["name"].endswith("/") or "//" in m["name"]:
            raise InvalidImageRef(f"invalid image reference {text!r}: use NAME[:TAG][@sha256:DIGEST], "
                                  "e.g. localhost:5000/team/app:1.2 or redis:7")
        return cls(text, "registry", registry, m["name"], m["tag"], m["digest"])

    @property
    def is_recipe(self) -> bool:
        return self.kind == "recipe"

    @property
    def name(self) -> str:
        """The last path part without tag or digest: `redis` for docker.io/library/redis:7."""
        return (self.repository or self.path).rsplit("/", 1)[-1]

    def normalized(self) -> ImageRef:
        """A Docker Hub short name as Docker reads it: redis:7 → docker.io/library/redis:7."""
        if self.kind != "registry" or self.registry is not None:
            return self
        repo = self.repository if "/" in self.repository else f"library/{self.repository}"
        tag = self.tag or (None if self.digest else "latest")
        return replace(self, registry="docker.io", repository=repo, tag=tag, text=_text("docker.io", repo, tag,
                                                                                          self.digest))

    def pinned(self, digest: str) -> str:
        """This reference, by digest: REGISTRY/REPO@sha256:… (a tag given is dropped)."""
        return _text(self.registry, self.repository, None, digest)

    def without_digest(self) -> str:
        return _text(self.registry, self.repository, self.tag, None)


def _text(registry: str | None, repository: str, tag: str | None, digest: str | None) -> str:
    out = f"{registry}/{repository}" if registry else repository
    if tag:
        out += f":{tag}"
    if digest:
        out += f"@{digest}"
    return out
