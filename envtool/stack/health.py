"""Healthcheck state machine (pure): starting → healthy | unhealthy, Docker's rules."""

from __future__ import annotations

from dataclasses import dataclass

STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"


@dataclass
class HealthState:
    retries: int
    start_period: float
    status: str = STARTING
    failures: int = 0
    last_output: str = ""

    def record(self, ok: bool, since_start: float, output: str = "") -> str:
        self.last_output = output
        if ok:
            self.status, self.failures = HEALTHY, 0
        elif since_start < self.start_period and self.status == STARTING:
            pass                       # failures during the start period do not count
        else:
            self.failures += 1
            if self.failures >= self.retries:
                self.status = UNHEALTHY
        return self.status
