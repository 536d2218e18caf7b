"""The typer app: global options, command registration, and the one place that catches
EnvtoolError, prints it and picks the exit code (0 ok, 1 runtime failure, 2 bad input)."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import typer

from envtool.errors import EnvtoolError

app = typer.Typer(
    name="envtool",
    help="Declarative, reproducible multi-container stacks without a daemon.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass
class Globals:
    file: str | None = None
    directory: str | None = None
    debug: bool = False


@app.callback()
def _globals(
    ctx: typer.Context,
    file: str | None = typer.Option(None, "-f", "--file", help="Path to envtool.toml."),
    directory: str | None = typer.Option(None, "-C", "--directory", help="Project directory."),
    project: str | None = typer.Option(None, "-p", "--project-name", envvar="ENVTOOL_PROJECT",
                                       help="Act on this project's stack (e.g. one run from a bundle)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    import os

    if project:
        os.environ["ENVTOOL_PROJECT"] = project
    ctx.obj = Globals(file, directory, debug)


def _register() -> None:
    from envtool.cli.commands import images, release, run, spec, stack

    spec.register(app)
    images.register(app)
    run.register(app)
    stack.register(app)
    release.register(app)


_register()


def main(argv: list[str] | None = None) -> int:
    debug = "--debug" in (argv if argv is not None else sys.argv)
    try:
        app(args=argv, standalone_mode=True)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except EnvtoolError as e:
        if debug:
            raise
        from envtool.cli.render import print_error

        print_error(e)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - a bug in envtool: one line, traceback with --debug
        if debug:
            raise
        sys.stderr.write(f"error[internal]: {type(e).__name__}: {e}\n"
                         "  hint: this is a bug in envtool; rerun with --debug and report the traceback\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
