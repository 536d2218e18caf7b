"""`envtool up -d`: one body for the typer command (commands/stack.py) and for the fast path that
skips typer (cli/argv.py), which reads

    envtool [-C DIR] [-f FILE] [--debug] up -d [-e ENV] [--progress MODE] [--json] [--locked] [-w] [SERVICE...]

`up -d` is what a developer types after every edit, and importing typer and click was ~35 ms of the
time before its first container starts (its supervisor is already starting beside the CLI:
cli/app.py).  An attached `up` (it streams logs), `--dry-run` and `--bundle` go through typer.
tests/unit/cli/test_fast_argv.py holds UP_OPTIONS equal to the typer command's options.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import Any

from envtool.cli.argv import Table, split

UP_OPTIONS: Table = {
    "-d": ("detach", "on"), "--detach": ("detach", "on"),
    "-e": ("env", "value"), "--env": ("env", "value"),
    "--dry-run": ("dry_run", "on"),
    "--progress": ("progress", "value"),
    "--json": ("json_", "on"),
    "-w": ("watch_", "on"), "--watch": ("watch_", "on"),
    "--locked": ("locked", "on"),
    "--bundle": ("bundle", "value"),
    "--release": ("release", "value"),
}


def progress_event(ev: dict[str, Any]) -> None:
    from envtool.cli import render

    if ev.get("event") == "action":
        render.info(ev["text"])


def report(final: dict[str, Any], json_: bool) -> None:
    from envtool.cli import render

    rows = final.get("containers", [])
    if json_:
        render.print_json(rows)
    else:
        for r in rows:
            health = f" ({r['health']})" if r.get("health") else ""
            render.info(f"{r['name']}: {r['status']}{health} {r['ip']} {' '.join(r['ports'])}".rstrip())


def fail_on_early_exits(project: str, final: dict[str, Any]) -> None:
    """A container that exits right after it started is a failed `up`, with its last lines."""
    from envtool import api
    from envtool.cli import render

    failed = api.early_exits(project, final)
    if not failed:
        return
    for r in failed:
        what = (f"exited with code {r.get('exit_code')}" if r["status"] in ("exited", "dead")
                else f"is restarting (exit code {r.get('exit_code')})")
        render.print_warning(f"{r['name']} {what} right after it started; its last lines:")
        for line in r["log"]:
            sys.stderr.write(f"  {r['service']} | {line}\n")
    from envtool.errors import ContainerError

    raise ContainerError(f"{len(failed)} container(s) exited right after they started: "
                         + ", ".join(r["name"] for r in failed), hint="see `envtool logs SERVICE`; fix and `envtool up` again")


def up(file: str | None, directory: str | None, services: list[str] | None, env: str | None = None,
       progress: str = "auto", json_: bool = False, locked: bool = False) -> dict[str, Any]:
    """Build what is missing and have the supervisor reconcile the stack; prints what `up` says
    before the containers' rows, and returns the final state."""
    from envtool import api
    from envtool.cli import render
    from envtool.cli.progress import reporter

    rep = reporter(progress, only_work=True)
    notes: list[str] = []
    warnings: list[str] = []
    with rep if hasattr(rep, "__enter__") else contextlib.nullcontext():
        final = api.up(file, directory, env, services or None, rep, progress_event, locked=locked,
                       notes=notes, warnings=warnings)
    for w in warnings:
        render.print_warning(w)
    for n in notes:
        render.info(n)
    report(final, json_)
    return final


def up_detached(file: str | None = None, directory: str | None = None, services: list[str] | None = None,
                env: str | None = None, progress: str = "auto", json_: bool = False, locked: bool = False,
                watch_: bool = False) -> int:
    from envtool import api
    from envtool.cli import render

    final = up(file, directory, services, env, progress, json_, locked)
    fail_on_early_exits(api.project_name(file, directory), final)
    if watch_:
        api.start_watch_daemon(file, directory, env)
        render.info("watching for changes (see `envtool logs watch`; `envtool down` stops it)")
    return 0


def parse_fast(argv: list[str]) -> Callable[[], int] | None:
    """The command to run for a plain `up -d` line, or None to let typer parse it."""
    got = split(argv, {"up": UP_OPTIONS})
    if got is None or not got.values.get("detach") or os.environ.get("ENVTOOL_PROJECT"):
        return None
    values = dict(got.values)
    values.pop("detach")
    if {"dry_run", "bundle", "release"} & set(values) or any(s.startswith("-") for s in got.rest):
        return None
    kwargs = {**got.where, **values, "services": got.rest}
    return lambda: up_detached(**kwargs)
