"""run: a one-off container."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    app.command("run", context_settings={"allow_interspersed_args": False})(run)


def run(ctx: typer.Context,
        image: str = typer.Argument(..., help="Recipe name, store name (project/name:tag), digest or "
                                              "oci-archive:<path>."),
        command: list[str] = typer.Argument(None, help="Command and arguments (default: the image's)."),
        env: list[str] = typer.Option([], "-e", "--env", help="Set an environment variable (NAME=value)."),
        volume: list[str] = typer.Option([], "-v", "--volume", help="Bind mount SOURCE:TARGET[:ro]."),
        workdir: str | None = typer.Option(None, "-w", "--workdir", help="Working directory in the container."),
        user: str | None = typer.Option(None, "-u", "--user", help="User: name, uid or uid:gid."),
        memory: str | None = typer.Option(None, "-m", "--memory", help="Memory limit, e.g. 64M."),
        cpus: float | None = typer.Option(None, "--cpus", help="CPU limit, e.g. 0.5."),
        pids: int | None = typer.Option(None, "--pids", help="Process limit."),
        tty: bool = typer.Option(False, "-t", "--tty", help="Allocate a pseudo-terminal."),
        interactive: bool = typer.Option(False, "-i", "--interactive", help="Accepted for Docker "
                                                                          "compatibility; stdin is always attached."),
        rm: bool = typer.Option(True, "--rm/--no-rm", help="Remove the container's files when it exits."),
        init: bool = typer.Option(True, "--init/--no-init", help="Run tini as PID 1 (reaps zombies, "
                                                                 "forwards signals)."),
        name: str | None = typer.Option(None, "--name", help="Container name."),
        hostname: str | None = typer.Option(None, "--hostname", help="Container hostname."),
        read_only: bool = typer.Option(False, "--read-only", help="Mount the root filesystem read-only."),
        cap_add: list[str] = typer.Option([], "--cap-add", help="Add a capability."),
        cap_drop: list[str] = typer.Option([], "--cap-drop", help="Drop a capability (or ALL)."),
        entrypoint: str | None = typer.Option(None, "--entrypoint", help="Override the image's entrypoint."),
        stop_timeout: float = typer.Option(10.0, "--stop-timeout", help="Seconds between SIGTERM and SIGKILL."),
        progress: str = typer.Option("auto", "--progress", help="Build progress: auto | plain | quiet."),
        ) -> None:
    """Run a one-off container and return its exit code."""
    from envtool.cli.oneoff import RunArgs, execute

    raise typer.Exit(execute(RunArgs.of(ctx.params, ctx.obj.file, ctx.obj.directory)))
