"""The entry point, and the one place that catches EnvtoolError, prints it and picks the exit
code (0 ok, 1 runtime failure, 2 bad input).  A plain `envtool run` goes straight to the container
(cli/oneoff.py), a plain `validate` or `config` straight to the file (cli/specout.py), a plain
`up -d` straight to the supervisor (cli/stackup.py); every other command line goes through the
typer app (cli/root.py)."""

from __future__ import annotations

import sys

from envtool.cli import oneoff, specout, stackup
from envtool.errors import EnvtoolError


def wants_debug(args: list[str]) -> bool:
    """--debug among the global options, before the command: `envtool exec web tool --debug`
    passes --debug to the tool, and shows no tracebacks."""
    takes_value = {"-f", "--file", "-C", "--directory", "-p", "--project-name"}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--debug":
            return True
        if arg == "--" or not arg.startswith("-"):
            return False
        i += 2 if arg in takes_value else 1
    return False


# commands that start, enter or tear down containers (or build images in them): an ordinary user
# runs them inside the rootless session (runtime/rootless.py); the rest need no namespace at all
SESSION_COMMANDS = frozenset({"up", "down", "run", "exec", "stop", "start", "restart", "scale", "watch", "build",
                              "lock", "save", "gc", "push", "pull", "bundle", "promote", "rollback", "deploy",
                              "remote-receive"})


def command_of(args: list[str]) -> str | None:
    takes_value = {"-f", "--file", "-C", "--directory", "-p", "--project-name"}
    i = 0
    while i < len(args):
        if args[i] == "--":
            return args[i + 1] if i + 1 < len(args) else None
        if not args[i].startswith("-"):
            return args[i]
        i += 2 if args[i] in takes_value else 1
    return None


def _join_session(args: list[str]) -> None:
    """Before any thread starts (setns into a user namespace refuses a threaded process)."""
    import os

    if os.geteuid() != 0 and command_of(args) in SESSION_COMMANDS and "--help" not in args:
        from envtool.runtime import rootless

        rootless.enter()


def _no_pydantic_plugins() -> None:
    """The envtool command runs no pydantic plugins, as PYDANTIC_DISABLE_PLUGINS=__all__ would have
    it: pydantic's plugin loader imports importlib.metadata and reads every installed distribution's
    entry points when the first model class is built, ~10-25 ms of every command that reads
    envtool.toml.  (pydantic imports the loader in one place, plugin/_schema_validator.py, for its
    one function; tests/unit/cli/test_fast_argv.py checks that this still holds.)"""
    if "pydantic.plugin._loader" not in sys.modules:
        import types

        loader = types.ModuleType("pydantic.plugin._loader", "envtool: no pydantic plugins")
        loader.get_plugins = tuple                      # type: ignore[attr-defined]  # () : no plugins
        sys.modules["pydantic.plugin._loader"] = loader


def _start_supervisor_early(args: list[str]) -> bool:
    """`up`: the project's supervisor starts before typer and pydantic are imported, and its own
    start-up (pyroute2, the runtime) runs beside theirs.  Not for a dry run, a bundle or help, and
    only where the global options are plain -C / -f (otherwise `up` starts it a little later)."""
    from envtool.cli.argv import global_options

    if command_of(args) != "up" or {"--dry-run", "--bundle", "--help", "-h"} & set(args):
        return False
    found = global_options(args, {"up"})
    if found is None:
        return False
    from envtool import api

    where, _ = found
    api.start_supervisor_early(where.get("file"), where.get("directory"))
    return True


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    _no_pydantic_plugins()
    early = False
    debug = wants_debug(args)
    try:
        _join_session(args)
        early = _start_supervisor_early(args)
        run = oneoff.parse_fast(args)              # `run`, `validate`, `config` without typer (cli/argv.py)
        if run is not None:
            return oneoff.execute(run)
        fast = specout.parse_fast(args) or stackup.parse_fast(args)    # `up -d` too
        if fast is not None:
            return fast()
        from envtool.cli.root import app

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
    finally:
        if early:
            from envtool import api

            api.abandon_early_supervisor()
    return 0


if __name__ == "__main__":
    sys.exit(main())
