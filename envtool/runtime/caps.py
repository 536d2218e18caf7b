"""Capability sets: Docker's default, cap_add / cap_drop arithmetic, bitmasks (pure)."""

from __future__ import annotations

from collections.abc import Iterable

from envtool._util.linux import CAPABILITIES, DEFAULT_CAPABILITIES, normalize_capability

ALL = frozenset(CAPABILITIES)


def effective_set(add: Iterable[str] = (), drop: Iterable[str] = (),
                  base: Iterable[str] = DEFAULT_CAPABILITIES) -> frozenset[str]:
    """Docker's rule: start from the default set, drop, then add; "ALL" works on either side."""
    caps = set(base)
    drops = {normalize_capability(c) for c in drop}
    adds = {normalize_capability(c) for c in add}
    caps = set() if "ALL" in drops else caps - drops
    caps |= ALL if "ALL" in adds else adds
    return frozenset(caps)


def mask(caps: Iterable[str]) -> int:
    out = 0
    for c in caps:
        out |= 1 << CAPABILITIES[c]
    return out


def names(bits: int) -> list[str]:
    return sorted((n for n, b in CAPABILITIES.items() if bits >> b & 1), key=CAPABILITIES.__getitem__)


def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return max(CAPABILITIES.values())
