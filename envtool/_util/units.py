"""Durations ("1s", "1m30s", "250ms"), sizes ("256M", "1g"), cpus — parse and format."""

from __future__ import annotations

import re

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_SCALE = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)$", re.IGNORECASE)
_SIZE_SCALE = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_duration(text: str | int | float) -> float:
    """Seconds from a Compose-style duration; a bare number means seconds."""
    if isinstance(text, bool):
        raise ValueError(f"invalid duration {text!r}")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"invalid duration {text!r}: negative")
        return float(text)
    if not isinstance(text, str):
        raise ValueError(f"invalid duration {text!r}: use e.g. 500ms, 10s, 1m30s")
    s = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s)
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_SCALE[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise ValueError(f"invalid duration {text!r}: use e.g. 500ms, 10s, 1m30s")
    return total


def format_duration(seconds: float) -> str:
    if seconds < 1 and seconds != 0:
        return f"{round(seconds * 1000)}ms"
    if seconds == int(seconds):
        s = int(seconds)
        if s >= 60 and s % 60 == 0:
            return f"{s // 60}m"
        return f"{s}s"
    return f"{seconds}s"


def parse_size(text: str | int) -> int:
    """Bytes from "256M", "1g", "512k", "1GiB" or a plain integer (binary units, like Docker)."""
    if isinstance(text, bool):
        raise ValueError(f"invalid size {text!r}")
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"invalid size {text!r}: negative")
        return text
    if not isinstance(text, str):
        raise ValueError(f"invalid size {text!r}: use e.g. 64M, 1G, 512k")
    m = _SIZE.match(text.strip())
    if not m:
        raise ValueError(f"invalid size {text!r}: use e.g. 64M, 1G, 512k")
    return int(float(m.group(1)) * _SIZE_SCALE[m.group(2).lower()])


def format_size(n: int | float) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
