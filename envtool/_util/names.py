"""Names for host resources; all carry the envtool prefix so `gc` can find orphans."""

from __future__ import annotations

import re

from envtool._util.digest import small_sha256_hex

PREFIX = "envtool"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def valid_project_name(name: str) -> bool:
    return bool(_NAME_RE.match(name))


def project_name_from_dir(dirname: str) -> str:
    """Directory name → project name: lowercase, other characters become '-'."""
    name = re.sub(r"[^a-z0-9_-]+", "-", dirname.lower()).strip("-_")
    return name or "default"


def short_hash(text: str, n: int = 8) -> str:
    return small_sha256_hex(text.encode())[:n]


def interface_name(kind: str, *parts: str) -> str:
    """≤15-character interface name: `et-<hash>` style, stable for the same inputs."""
    name = f"{kind}-{short_hash('/'.join(parts), 15 - len(kind) - 1)}"
    assert len(name) <= 15
    return name


