"""Desired stack vs. what runs ⇒ a Plan of actions with reasons (pure; shown by `up --dry-run`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envtool.stack.graph import order


@dataclass(frozen=True)
class Action:
    kind: str           # create | recreate | keep | remove | start
    container: str
    service: str
    reason: str

    def describe(self) -> str:
        return f"{self.kind:8} {self.container}: {self.reason}"


def plan_up(desired: Any, actual: dict[str, dict[str, Any]]) -> list[Action]:
    """desired: StackSpec; actual: state containers by name ({hash, status, service})."""
    actions: list[Action] = []
    wanted = {c.name: c for c in desired.containers}
    for name, info in sorted(actual.items()):
        if name not in wanted:
            actions.append(Action("remove", name, info.get("service", ""), "no longer in the stack"))
    by_service = desired.services()
    for service in order(desired.dependencies()):
        for c in by_service.get(service, []):
            info = actual.get(c.name)
            if info is None:
                actions.append(Action("create", c.name, service, "new"))
            elif info.get("hash") != c.hash:
                actions.append(Action("recreate", c.name, service, "configuration changed"
                                      if info.get("image") == c.image else
                                      f"image changed {str(info.get('image'))[7:19]} → {c.image[7:19]}"))
            elif info.get("status") not in ("running", "starting", "healthy"):
                actions.append(Action("start", c.name, service, f"was {info.get('status')}"))
            else:
                actions.append(Action("keep", c.name, service, "unchanged"))
    return actions
