"""Command lines read without typer: the commands whose start-up time users feel most.

Importing typer and click costs ~30-50 ms, a good part of a one-off container's wall time (the
container itself starts in ~10 ms) and of `config` / `validate` in an editor's save hook.  `split`
reads

    envtool [-C DIR] [-f FILE] [--debug] COMMAND [OPTIONS] [ARGS...]

with the command's option table and answers None for anything else (--help, an option it does not
know, a value it cannot convert): that argv goes through typer as usual, which prints the usage
error.  tests/unit/cli/test_fast_argv.py holds each table equal to the typer command's options and
compares what both parsers make of the same argv.
"""

from __future__ import annotations

from typing import Any

from envtool._util.record import dataclass, field

# option string -> (parameter name, kind); kind: "value" takes one value, "multi" may repeat,
# "on" / "off" set the parameter to True / False
Table = dict[str, tuple[str, str]]

GLOBALS = {"-C": "directory", "--directory": "directory", "-f": "file", "--file": "file"}


@dataclass
class Parsed:
    command: str
    where: dict[str, str] = field(default_factory=dict)     # file / directory
    values: dict[str, Any] = field(default_factory=dict)    # the command's options, by parameter name
    rest: list[str] = field(default_factory=list)           # arguments from the first positional on


def _split(arg: str, table: Table | dict[str, str]) -> tuple[str, str | None] | None:
    """'--name=x' -> ('--name', 'x'); '-mVALUE' -> ('-m', 'VALUE'); a bare known option -> (opt, None)."""
    if arg in table:
        return arg, None
    if arg.startswith("--") and "=" in arg:
        opt, _, value = arg.partition("=")
        return (opt, value) if opt in table else None
    if len(arg) > 2 and arg[0] == "-" and arg[1] != "-" and arg[:2] in table:
        return arg[:2], arg[2:]
    return None


def global_options(argv: list[str], commands: set[str] | dict[str, Table]) -> tuple[dict[str, str], int] | None:
    """The global options before the command (one of `commands`) and the command's index; None
    when one is not plainly understood or no such command follows."""
    i, where = 0, {}
    while i < len(argv) and argv[i] not in commands:
        if argv[i] == "--debug":
            i += 1
            continue
        got = _split(argv[i], GLOBALS)
        if got is None:
            return None
        opt, value = got
        if value is None:
            if i + 1 >= len(argv):
                return None
            value, i = argv[i + 1], i + 1
        where[GLOBALS[opt]] = value
        i += 1
    return (where, i) if i < len(argv) else None


def split(argv: list[str], tables: dict[str, Table], convert: dict[str, type] | None = None) -> Parsed | None:
    """The global options, the command (one of `tables`), its options and what follows them; None
    when the command is not in `tables` or anything is not plainly understood."""
    convert = convert or {}
    found = global_options(argv, tables)
    if found is None:
        return None
    where, i = found
    parsed, table = Parsed(argv[i], where), tables[argv[i]]
    i += 1
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        flags = [f"-{c}" for c in arg[1:]] if arg[1] != "-" else []
        if len(flags) > 1 and all(table.get(f, ("", ""))[1] == "on" for f in flags):
            parsed.values.update({table[f][0]: True for f in flags})         # -it, -ti
            i += 1
            continue
        got = _split(arg, table)
        if got is None:
            return None
        opt, value = got
        name, kind = table[opt]
        if kind in ("on", "off"):
            if value is not None:
                return None
            parsed.values[name] = kind == "on"
        else:
            if value is None:
                if i + 1 >= len(argv):
                    return None
                value, i = argv[i + 1], i + 1
            try:
                converted = convert.get(name, str)(value)
            except ValueError:
                return None
            if kind == "multi":
                parsed.values.setdefault(name, []).append(converted)
            else:
                parsed.values[name] = converted
        i += 1
    parsed.rest = argv[i:]
    return parsed
