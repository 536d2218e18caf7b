"""Deep merge of `[environments.NAME]` over the base tree (pure).

Tables merge key by key; arrays and scalars in the overlay replace the base value.  An overlay may
not change a service's image (every environment runs the same locked digests) nor add services.
"""

from __future__ import annotations

from typing import Any

from envtool.spec.locate import Path

FORBIDDEN_KEYS = ("image", "develop")


class OverlayError(ValueError):
    def __init__(self, path: Path, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.hint = hint


def deep_merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = deep_merge(base[k], v) if k in base else v
        return out
    return over


def overlay_problems(raw: dict[str, Any], env: str) -> list[OverlayError]:
    """What is wrong with environments.<env> before it is merged."""
    problems: list[OverlayError] = []
    overlay = raw.get("environments", {}).get(env, {})
    base_services = raw.get("services", {})
    if not isinstance(overlay, dict):
        return problems
    for name in (overlay.get("secrets") or {}) if isinstance(overlay.get("secrets"), dict) else ():
        if name not in (raw.get("secrets") or {}):
            problems.append(OverlayError(("environments", env, "secrets", name),
                                         f"unknown secret {name!r} in environment {env!r}",
                                         hint="declare it under [secrets] first"))
    for name, svc in (overlay.get("services") or {}).items():
        path: Path = ("environments", env, "services", name)
        if name not in base_services:
            problems.append(OverlayError(path, f"unknown service {name!r} in environment {env!r}",
                                         hint="an overlay can only change services declared under [services]"))
            continue
        if isinstance(svc, dict):
            for key in FORBIDDEN_KEYS:
                if key in svc:
                    problems.append(OverlayError(
                        path + (key,), f"an environment overlay may not change {key!r}",
                        hint="every environment runs the same locked images; change the base service"))
    return problems


def apply_overlay(raw: dict[str, Any], env: str) -> dict[str, Any]:
    overlay = raw.get("environments", {}).get(env, {})
    merged = dict(raw)
    merged["services"] = deep_merge(raw.get("services", {}), overlay.get("services", {}))
    if overlay.get("secrets"):          # a secret's source is replaced whole (file or environment)
        merged["secrets"] = {**(raw.get("secrets") or {}), **overlay["secrets"]}
    return merged
