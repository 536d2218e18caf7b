"""`envtool run`: one body for the typer command and for a fast path that skips typer.

Importing typer and click costs ~50 ms, a good part of a one-off container's wall time (the
container itself starts in ~10 ms).  `parse_fast` reads

    envtool [-C DIR] [-f FILE] [--debug] run [OPTIONS] IMAGE [COMMAND...]

with the option table below and answers None for anything else (--help, an option it does not
know, a value it cannot convert): that argv goes through typer as usual, which prints the usage
error.  tests/unit/cli/test_run_fast.py holds the table equal to the typer command's options and
compares what both parsers make of the same argv.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:                    # imported by RunArgs.of: not on every command's start-up path
    from envtool.stack.convert import RunOptions

# option string -> (parameter name, kind); kind: "value" takes one value, "multi" may repeat,
# "on" / "off" set the parameter to True / False
RUN_OPTIONS: dict[str, tuple[str, str]] = {
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
GLOBALS = {"-C": "directory", "--directory": "directory", "-f": "file", "--file": "file"}


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


def _split(arg: str, table: dict[str, tuple[str, str]] | dict[str, str]) -> tuple[str, str | None] | None:
    """'--name=x' -> ('--name', 'x'); '-mVALUE' -> ('-m', 'VALUE'); a bare known option -> (opt, None)."""
    if arg in table:
        return arg, None
    if arg.startswith("--") and "=" in arg:
        opt, _, value = arg.partition("=")
        return (opt, value) if opt in table else None
    if len(arg) > 2 and arg[0] == "-" and arg[1] != "-" and arg[:2] in table:
        return arg[:2], arg[2:]
    return None


def parse_fast(argv: list[str]) -> RunArgs | None:
    """RunArgs for a plain `run` command line, or None to let typer parse it."""
    i, where = 0, {}
    while i < len(argv) and argv[i] != "run":           # global options before the command
        if argv[i] == "--debug":
            i += 1
            continue
        split = _split(argv[i], GLOBALS)
        if split is None:
            return None
        opt, value = split
        if value is None:
            if i + 1 >= len(argv):
                return None
            value, i = argv[i + 1], i + 1
        where[GLOBALS[opt]] = value
        i += 1
    if i >= len(argv):
        return None
    i += 1
    values: dict[str, Any] = {}
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        flags = [f"-{c}" for c in arg[1:]] if arg[1] != "-" else []
        if len(flags) > 1 and all(RUN_OPTIONS.get(f, ("", ""))[1] == "on" for f in flags):
            values.update({RUN_OPTIONS[f][0]: True for f in flags})         # -it, -ti
            i += 1
            continue
        split = _split(arg, RUN_OPTIONS)
        if split is None:
            return None
        opt, value = split
        name, kind = RUN_OPTIONS[opt]
        if kind in ("on", "off"):
            if value is not None:
                return None
            values[name] = kind == "on"
        else:
            if value is None:
                if i + 1 >= len(argv):
                    return None
                value, i = argv[i + 1], i + 1
            try:
                converted = CONVERT.get(name, str)(value)
            except ValueError:
                return None
            if kind == "multi":
                values.setdefault(name, []).append(converted)
            else:
                values[name] = converted
        i += 1
    if i >= len(argv):
        return None                                     # no IMAGE: typer explains
    return RunArgs.of({"image": argv[i], "command": argv[i + 1:], **values}, **where)


def execute(args: RunArgs) -> int:
    """Run the container attached to this terminal; returns its exit code."""
    from envtool import api
    from envtool.cli import render

    api.check_host()                                     # "needs root" before the (0700) store says no
    store = api.open_store()
    image = api.stored_image(store, args.image)          # no project, no build: the common case
    if image is None:
        from envtool.cli.progress import reporter

        rep = reporter(args.progress, only_work=True)
        with rep if hasattr(rep, "__enter__") else contextlib.nullcontext():
            image = api.resolve_image(args.image, args.file, args.directory, rep)
    info, message = api.run(image.manifest_digest, args.options, args.file, args.directory, rm=args.rm, name=args.name)
    if message:
        render.print_warning(message)
    sys.stdout.flush()
    return int(info.code)
