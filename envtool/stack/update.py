"""Rolling replacement of a service's containers: the bookkeeping, free of processes and sockets.

A `Replacement` takes one replica slot from its old container to a new one (a recreate, a
restart), or retires a container without successor (a scale down).  The supervisor moves each one
through its phases and asks `ServiceUpdate` what may start next:

    start-first   queued → starting (new started; old still serving) → retiring (new ready: old
                  leaves the port map and DNS, drains, stops) → done
    stop-first    queued → stopping (old leaves, drains, stops) → starting (new started) → done
    removal       queued → retiring → done      (after every replacement of the service)

At most `parallelism` replacements of a service are under way at once.  A new container that
fails, or is not ready within `monitor`, fails the update; `failure_action` says what then:
rollback (each slot back to its old configuration, the old container kept where it still runs)
or pause (the failed slot keeps its old container, the slots already replaced stay replaced, the
rest are not touched).
"""

from __future__ import annotations

from typing import Any

from envtool._util.record import dataclass, field

QUEUED, STARTING, STOPPING, RETIRING, DONE, UNDONE = "queued", "starting", "stopping", "retiring", "done", "undone"
UNDER_WAY = (STARTING, STOPPING, RETIRING)


@dataclass(eq=False)
class Replacement:
    slot: str                    # the replica's name (project-service-N)
    old: Any | None              # supervisor.Managed, None for a slot that had no running container
    new: Any | None              # supervisor.Managed, None for a removal
    order: str = "start-first"
    phase: str = QUEUED
    deadline: float = 0.0        # monotonic: the new container must be ready by then
    listens: frozenset[int] = frozenset()     # ports the old one listened on: the new must too
    old_spec: Any = None         # what a rollback returns the slot to
    probed: bool = False         # probed as soon as it listened (supervisor._probe_on_listen)
    same: bool = False           # a restart: the new instance has the old one's configuration

    @property
    def removal(self) -> bool:
        return self.new is None


@dataclass
class ServiceUpdate:
    service: str
    parallelism: int
    failure_action: str
    items: list[Replacement] = field(default_factory=list)
    failed: str = ""             # why, once a replacement failed
    outcome: str = ""            # what was done about it (rolled back, paused)

    def under_way(self) -> list[Replacement]:
        return [r for r in self.items if r.phase in UNDER_WAY]

    def due(self) -> list[Replacement]:
        """The queued replacements that may start now: none after a failure; replacements up to
        `parallelism` under way; removals once every replacement is done."""
        if self.failed:
            return []
        queued = [r for r in self.items if r.phase == QUEUED]
        swaps = [r for r in queued if not r.removal]
        if swaps:
            return swaps[: max(0, self.parallelism - len(self.under_way()))]
        if any(not r.removal and r.phase != DONE and r.phase != UNDONE for r in self.items):
            return []
        return queued

    def finished(self) -> bool:
        if self.under_way():
            return False
        return bool(self.failed) or all(r.phase in (DONE, UNDONE) for r in self.items)

    def summary(self) -> str:
        done = sum(1 for r in self.items if r.phase == DONE and not r.removal)
        total = sum(1 for r in self.items if not r.removal)
        return f"{done} of {total}"


def failure(new: Any, now: float, deadline: float, monitor: float) -> str:
    """Why the new container of a replacement failed, or "" while it may still get ready.
    `new` is a supervisor.Managed."""
    status = str(new.status)
    if status == "failed":
        return f"could not be started: {new.error}"
    if status in ("exited", "restarting", "stopped"):
        return f"exited with code {new.exit_code}" + (" (out of memory)" if new.oom_killed else "")
    if status == "unhealthy":
        out = new.health.last_output.strip()[:200] if new.health else ""
        return "became unhealthy" + (f": {out}" if out else "")
    if now >= deadline:
        return f"was not ready within its monitor period ({monitor:g}s)"
    return ""
