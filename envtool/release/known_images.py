"""What Compose files name, mapped onto what Debian supplies (shared by release/compose_in.py
and release/dockerfile_in.py)."""

from __future__ import annotations

import re
import shlex
from typing import Any

from envtool.spec.imageref import ImageRef, InvalidImageRef

# Docker Hub name (last path part) → a Debian recipe that does the same job
KNOWN_IMAGES: dict[str, dict[str, Any]] = {
    "redis": {"packages": ["redis-server", "redis-tools"],
              "cmd": ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no"]},
    "redismod": {"packages": ["redis-server", "redis-tools"],
                 "cmd": ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no"]},
    "memcached": {"packages": ["memcached"], "cmd": ["memcached", "-u", "nobody", "-l", "0.0.0.0"]},
    "nginx": {"packages": ["nginx-light"], "cmd": ["nginx", "-g", "daemon off;"]},
    "python": {"packages": ["python3", "python3-pip", "python3-venv"], "cmd": ["python3"]},
    "node": {"packages": ["nodejs", "npm"], "cmd": ["node"]},
    "debian": {"packages": [], "cmd": ["bash"]},
    "ubuntu": {"packages": [], "cmd": ["bash"]},
    "alpine": {"packages": [], "cmd": ["sh"]},
    "busybox": {"packages": ["busybox"], "cmd": ["sh"]},
}

def safe_name(text: str) -> str:
    out = re.sub(r"[^a-z0-9_-]", "-", text.lower()).strip("-_")
    return out if out and out[0].isalnum() else f"x{out}"


def known_image(image: str) -> tuple[str, dict[str, Any]] | None:
    try:
        base = ImageRef.parse(image).name
    except InvalidImageRef:
        return None
    if base in KNOWN_IMAGES:
        return base, KNOWN_IMAGES[base]
    return None


def argv_of(value: Any) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else [str(x) for x in value]


