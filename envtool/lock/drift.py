"""Project × Lock → what no longer matches (pure); the first difference is named in the error."""

from __future__ import annotations

from typing import Any

from envtool._util.digest import canonical_json, sha256_bytes
from envtool._util.record import dataclass
from envtool.lock.model import Lock


@dataclass(frozen=True)
class Drift:
    image: str
    reason: str


def recipe_digest(recipe: Any) -> str:
    doc = recipe.model_dump(mode="json", by_alias=True)
    # keys added after 1.0 count only when used, so existing locks stay valid
    if not doc.get("steps"):
        doc.pop("steps", None)
    for c in doc.get("copy", []):
        if c.get("from") is None:
            c.pop("from", None)
    return sha256_bytes(canonical_json(doc))


def spec_digest(recipes: dict[str, Any]) -> str:
    return sha256_bytes(canonical_json({n: recipe_digest(r) for n, r in sorted(recipes.items())}))


def drift(recipes: dict[str, Any], lock: Lock, only: list[str] | None = None) -> list[Drift]:
    out = []
    for name in sorted(only or recipes):
        locked = lock.images.get(name)
        if locked is None:
            out.append(Drift(name, "not in envtool.lock"))
        elif locked.recipe != recipe_digest(recipes[name]):
            out.append(Drift(name, "its recipe changed since envtool.lock was written"))
    return out
