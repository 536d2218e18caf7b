"""The typer app: global options and the registration of every command module."""

from __future__ import annotations

import typer
import typer.core
import typer.main

from envtool._util.record import dataclass

# typer renders help and usage errors with rich when rich is importable; that import (rich_utils,
# markdown-it, pygments) costs ~140 ms on every `--help` and every mistyped option.  Click's plain
# rendering is what other CLIs print and keeps every command well under 300 ms; envtool's own
# output (tables, progress, coloured log prefixes) still uses rich, imported where it is drawn.
typer.core.HAS_RICH = False
typer.main.HAS_RICH = False

app = typer.Typer(
    name="envtool",
    help="Declarative, reproducible multi-container stacks without a daemon.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


@dataclass
class Globals:
    file: str | None = None
    directory: str | None = None


@app.callback()
def _globals(
    ctx: typer.Context,
    file: str | None = typer.Option(None, "-f", "--file", help="Path to envtool.toml."),
    directory: str | None = typer.Option(None, "-C", "--directory", help="Project directory."),
    project: str | None = typer.Option(None, "-p", "--project-name", envvar="ENVTOOL_PROJECT",
                                       help="Act on this project's stack (e.g. one run from a bundle)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks (read by cli/app.py, which catches errors)."),
) -> None:
    from envtool.api.project import configure, reset

    configure(project=project)
    ctx.call_on_close(reset)            # one command's context: nothing carries into later calls
    ctx.obj = Globals(file, directory)


def _register() -> None:
    from envtool.cli.commands import images, release, run, spec, stack

    spec.register(app)
    images.register(app)
    run.register(app)
    stack.register(app)
    release.register(app)


_register()
