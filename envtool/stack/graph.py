"""depends_on as a graph: start levels, reverse order for teardown (pure)."""

from __future__ import annotations

from collections.abc import Mapping

from envtool.errors import SpecError


def levels(deps: Mapping[str, Mapping[str, object]]) -> list[list[str]]:
    """Services grouped so that every service comes after all it depends on."""
    remaining = {name: set(d) & set(deps) for name, d in deps.items()}
    out: list[list[str]] = []
    while remaining:
        ready = sorted(n for n, d in remaining.items() if not d)
        if not ready:
            raise SpecError("dependency cycle between " + ", ".join(sorted(remaining)))
        out.append(ready)
        for n in ready:
            del remaining[n]
        for d in remaining.values():
            d.difference_update(ready)
    return out


def order(deps: Mapping[str, Mapping[str, object]]) -> list[str]:
    return [n for level in levels(deps) for n in level]

