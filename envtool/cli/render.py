"""Output: stdout carries data (tables, --json), stderr carries progress and diagnostics."""

from __future__ import annotations

import json
import sys
from typing import Any

from envtool.errors import EnvtoolError

_RED, _YELLOW, _DIM, _BOLD, _RESET = "\033[31m", "\033[33m", "\033[2m", "\033[1m", "\033[0m"


def _color(stream: Any) -> bool:
    import os

    return stream.isatty() and "NO_COLOR" not in os.environ


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


def print_error(err: EnvtoolError) -> None:
    c = _color(sys.stderr)
    for e in [err, *err.related]:
        head = f"{_RED}{_BOLD}error[{e.code}]{_RESET}" if c else f"error[{e.code}]"
        sys.stderr.write(f"{head}: {e}\n")
        if e.hint:
            sys.stderr.write(f"  {_DIM if c else ''}hint:{_RESET if c else ''} {e.hint}\n")


def print_warning(text: str) -> None:
    c = _color(sys.stderr)
    sys.stderr.write((f"{_YELLOW}warning{_RESET}" if c else "warning") + f": {text}\n")


def info(text: str) -> None:
    sys.stderr.write(text + "\n")


def table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    line = "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))
    sys.stdout.write(line.rstrip() + "\n")
    for r in rows:
        sys.stdout.write("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n")
