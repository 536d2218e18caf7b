"""Desired stack vs. what runs ⇒ a Plan of actions with reasons (pure; shown by `up --dry-run`)."""

from __future__ import annotations

from typing import Any

from envtool._util.record import dataclass
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
            found = actual.get(c.name)
            if found is None:
                actions.append(Action("create", c.name, service, "new"))
            elif found.get("hash") != c.hash:
                actions.append(Action("recreate", c.name, service, "configuration changed"
                                      if found.get("image") == c.image else
                                      f"image changed {str(found.get('image'))[7:19]} → {c.image[7:19]}"))
            elif found.get("status") not in ("running", "starting", "healthy"):
                actions.append(Action("start", c.name, service, f"was {found.get('status')}"))
            else:
                actions.append(Action("keep", c.name, service, "unchanged"))
    return actions


# ---- gating: may the next level of services start? ------------------------------------------------
@dataclass(frozen=True)
class Member:
    """What gating needs to know of one container of a service."""
    service: str
    status: str
    exit_code: int | None = None
    error: str = ""                  # why it could not be started
    health_output: str = ""          # its last healthcheck's output
    will_restart: bool = False       # by its restart policy, were it to exit now


RUNNING = ("starting", "running", "healthy", "unhealthy")


def level_verdict(services: list[str], members: list[Member], needs: dict[str, set[str]]) -> str | None:
    """None while the level's services are still on their way to what their dependents wait for
    (`needs`: started | healthy | completed), "" when they got there, else why they never will."""
    for service in services:
        conds = needs.get(service, {"started"})
        for m in (m for m in members if m.service == service):
            if m.status == "failed":
                return f"service {service!r} could not be started: {m.error}"
            if "completed" in conds:
                if m.status == "exited" and m.exit_code not in (0, None):
                    return (f"service {service!r} did not complete successfully "
                            f"(exit code {m.exit_code}); services depending on it were not started")
                if m.status != "exited":
                    return None
            if "healthy" in conds:
                if m.status == "unhealthy" or (m.status == "exited" and not m.will_restart):
                    detail = f": {m.health_output.strip()[:200]}" if m.health_output else ""
                    return (f"service {service!r} never became healthy (status {m.status}){detail}; "
                            "services depending on it were not started")
                if m.status != "healthy":
                    return None
            if conds == {"started"} and m.status not in RUNNING and m.status != "exited":
                return None
    return ""
