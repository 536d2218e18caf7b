"""`envtool validate` and `envtool config`: one body for the typer commands (commands/spec.py) and
for the fast path that skips typer (cli/argv.py), which reads

    envtool [-C DIR] [-f FILE] [--debug] validate|config [-e ENV] [--json]

Editors and pre-commit hooks run these on every save; typer's import would be a fifth of their time.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from envtool.cli.argv import Table, split

SPEC_OPTIONS: Table = {"-e": ("env", "value"), "--env": ("env", "value"), "--json": ("json_", "on")}


def validate(file: str | None = None, directory: str | None = None, env: str | None = None,
             json_: bool = False) -> int:
    from envtool import api
    from envtool.cli import render

    loaded = api.validate(file, directory, env)
    for w in loaded.warnings:
        render.print_warning(w)
    p = loaded.project
    if json_:
        render.print_json({"valid": True, "file": str(loaded.file), "project": p.name,
                           "services": list(p.services), "images": list(p.images),
                           "environments": list(p.environments)})
    else:
        render.info(f"{loaded.file}: ok ({len(p.services)} services, {len(p.images)} images, "
                    f"{len(p.environments)} environments)")
    return 0


def config(file: str | None = None, directory: str | None = None, env: str | None = None,
           json_: bool = False) -> int:
    from envtool import api
    from envtool.cli import render

    data = api.config(file, directory, env)
    if json_:
        render.print_json(data)
    else:
        import tomli_w

        sys.stdout.write(tomli_w.dumps(data))
    return 0


COMMANDS: dict[str, Callable[..., int]] = {"validate": validate, "config": config}


def parse_fast(argv: list[str]) -> Callable[[], int] | None:
    """The command to run for a plain `validate` / `config` line, or None to let typer parse it."""
    got = split(argv, dict.fromkeys(COMMANDS, SPEC_OPTIONS))
    if got is None or got.rest:
        return None
    body, kwargs = COMMANDS[got.command], {**got.where, **got.values}
    return lambda: body(**kwargs)
