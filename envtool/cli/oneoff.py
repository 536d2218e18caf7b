"""`envtool run`: one body for the typer command and for the fast path that skips typer
(cli/argv.py), which reads

    envtool [-C DIR] [-f FILE] [--debug] run [OPTIONS] IMAGE [COMMAND...]

with the option table below.  tests/unit/cli/test_run_fast.py holds the table equal to the typer
command's options and compares what both parsers make of the same argv.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Any

from envtool._util.record import dataclass
from envtool.cli.argv import Table, split

if TYPE_CHECKING:                    # imported by RunArgs.of: not on every command's start-up path
    from envtool.stack.convert import RunOptions

RUN_OPTIONS: Table = {
    "-e": ("env", "multi"), "--env": ("env", "multi"),
    "-v": ("volume", "multi"), "--volume": ("volume", "multi"),
    "-w": ("workdir", "value"), "--workdir": ("workdir", "value"),
    "-u": ("user", "value"), "--user": ("user", "value"),
    "-m": ("memory", "value"), "--memory": ("memory", "value"),
    "--cpus": ("cpus", "value"),
    "--pids": ("pids", "value"),
    "-t": ("tty", "on"), "--tty": ("tty", "on"),
    "-i": ("interactive", "on"), "--interactive": ("interactive", "on"),
    "--rm": ("rm", "on"), "--no-rm": ("rm", "off"),
    "--init": ("init", "on"), "--no-init": ("init", "off"),
    "--name": ("name", "value"),
    "--hostname": ("hostname", "value"),
    "--read-only": ("read_only", "on"),
    "--cap-add": ("cap_add", "multi"),
    "--cap-drop": ("cap_drop", "multi"),
    "--entrypoint": ("entrypoint", "value"),
    "--stop-timeout": ("stop_timeout", "value"),
    "--progress": ("progress", "value"),
}
CONVERT: dict[str, type] = {"cpus": float, "pids": int, "stop_timeout": float}


# the typer command's parameters that RunOptions names otherwise, and those that are not options
# of the container at all (with their defaults)
OPTION_FIELDS = {"volume": "volumes", "stop_timeout": "stop_grace"}
CLI_ONLY: dict[str, Any] = {"interactive": False, "rm": True, "name": None, "progress": "auto"}


@dataclass
class RunArgs:
    image: str
    options: RunOptions
    interactive: bool = False
    rm: bool = True
    name: str | None = None
    progress: str = "auto"
    file: str | None = None
    directory: str | None = None

    @classmethod
    def of(cls, params: dict[str, Any], file: str | None = None, directory: str | None = None) -> RunArgs:
        """From the command's parameters, named as the typer command names them (click's tuples
        and a missing COMMAND allowed); what is not given takes RunOptions' default."""
        from envtool.stack.convert import RunOptions

        values: dict[str, Any] = {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
        image = values.pop("image")
        values["command"] = values.get("command") or []
        cli = {k: values.pop(k) for k in CLI_ONLY if k in values}
        options = RunOptions(**{OPTION_FIELDS.get(k, k): v for k, v in values.items()})
        return cls(image, options, **cli, file=file, directory=directory)


def parse_fast(argv: list[str]) -> RunArgs | None:
    """RunArgs for a plain `run` command line, or None to let typer parse it."""
    got = split(argv, {"run": RUN_OPTIONS}, CONVERT)
    if got is None or not got.rest:
        return None                                     # no IMAGE: typer explains
    return RunArgs.of({"image": got.rest[0], "command": got.rest[1:], **got.values}, **got.where)


def execute(args: RunArgs) -> int:
    """Run the container attached to this terminal; returns its exit code."""
    from envtool import api
    from envtool.cli import render

    api.check_host()                                     # "needs root" before the (0700) store says no
    store = api.open_store()
    # no project load, no build: a digest or store name, or a recipe as last built from what is
    # still there (image/recent.py); the full load and locked build otherwise
    image = api.stored_image(store, args.image) or api.recent_image(store, args.image, args.file, args.directory)
    if image is None:
        from envtool.cli.progress import reporter

        rep = reporter(args.progress, only_work=True)
        notes: list[str] = []
        with rep if hasattr(rep, "__enter__") else contextlib.nullcontext():
            image = api.resolve_image(args.image, args.file, args.directory, rep, notes)
        for note in notes:
            render.info(note)
    info, message = api.run(image, args.options, args.file, args.directory, rm=args.rm, name=args.name)
    if message:
        render.print_warning(message)
    sys.stdout.flush()
    return int(info.code)
