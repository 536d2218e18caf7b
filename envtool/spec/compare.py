"""What differs between two resolved stacks (`envtool diff staging production`): pure."""

from __future__ import annotations

from typing import Any

MISSING = object()


def differences(a: Any, b: Any, path: tuple[str, ...] = ()) -> list[tuple[str, Any, Any]]:
    """(dotted key path, value in a, value in b) for every leaf that differs; MISSING where absent.
    Tables are compared key by key, arrays as whole values."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += differences(a.get(key, MISSING), b.get(key, MISSING), (*path, str(key)))
        return out
    if a == b:
        return []
    return [(".".join(path), a, b)]
