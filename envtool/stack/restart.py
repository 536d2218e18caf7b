"""Restart policies and back-off (pure)."""

from __future__ import annotations

BASE_DELAY, MAX_DELAY, RESET_AFTER = 0.1, 30.0, 10.0


def should_restart(policy: str, exit_code: int, stopped_by_user: bool) -> bool:
    if stopped_by_user:
        return False
    if policy in ("always", "unless-stopped"):
        return True
    if policy == "on-failure":
        return exit_code != 0
    return False


def backoff(restarts: int, ran_for: float) -> float:
    """Delay before the next start: doubles per quick restart, from 100 ms up to 30 s; a container
    that ran for 10 s or more starts again at once."""
    if ran_for >= RESET_AFTER:
        return 0.0
    return min(MAX_DELAY, BASE_DELAY * (2 ** max(0, restarts)))
