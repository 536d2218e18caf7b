"""up, down, ps, logs, exec, stop, start, restart, scale."""

from __future__ import annotations

import contextlib
import os
import sys

import typer

from envtool import api
from envtool.cli import render, stackup

EnvOpt = typer.Option(None, "--env", "-e", help="Environment overlay to apply.")


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("down")(down)
    app.command("ps")(ps)
    app.command("logs")(logs)
    app.command("exec", context_settings={"allow_interspersed_args": False})(exec_)
    app.command("stop")(stop)
    app.command("start")(start)
    app.command("restart")(restart)
    app.command("scale")(scale)
    app.command("watch")(watch)


def up(ctx: typer.Context, services: list[str] = typer.Argument(None, help="Only these services (and "
                                                                           "what they depend on)."),
       detach: bool = typer.Option(False, "-d", "--detach", help="Return once the stack is up."),
       env: str | None = EnvOpt,
       dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and change nothing."),
       progress: str = typer.Option("auto", "--progress", help="Build progress: auto | plain | quiet."),
       json_: bool = typer.Option(False, "--json", help="Print the final state as JSON (with -d)."),
       watch_: bool = typer.Option(False, "--watch", "-w", help="Apply develop.watch rules on file changes."),
       locked: bool = typer.Option(False, "--locked", help="Refuse a missing or mismatched envtool.lock "
                                                           "(implied for environments other than dev)."),
       bundle: str | None = typer.Option(None, "--bundle", help="Run this release bundle (no project "
                                                                "directory needed; every digest verified)."),
       release: str | None = typer.Option(None, "--release", help="With --bundle: refuse any other release id."),
       ) -> None:
    """Build what is missing and start the stack; attached, stream logs until Ctrl-C (which stops it)."""
    from envtool.cli.progress import reporter

    rep = reporter(progress, only_work=True)
    if bundle is not None:
        if services or dry_run or watch_:
            from envtool.errors import UsageError

            raise UsageError("--bundle runs the whole release: no SERVICE, --dry-run or --watch")
        final, rid = api.up_bundle(bundle, env, rep, stackup.progress_event, release)
        render.info(f"release {rid}" + (f" ({env})" if env else ""))
        api.configure(project=final["project"])
        stackup.report(final, json_)
        if not detach:
            _attach(ctx, env)
        else:
            stackup.fail_on_early_exits(final["project"], final)
        return
    if dry_run:
        with rep if hasattr(rep, "__enter__") else contextlib.nullcontext():
            dry = api.plan(ctx.obj.file, ctx.obj.directory, env, rep)
        for line in dry.would:
            typer.echo(line)
        for a in dry.actions:
            typer.echo(a.describe())
        return
    if detach:
        stackup.up_detached(ctx.obj.file, ctx.obj.directory, services, env, progress, json_, locked, watch_)
        return
    stackup.up(ctx.obj.file, ctx.obj.directory, services, env, progress, json_, locked)
    _attach(ctx, env, watch_)


def _attach(ctx: typer.Context, env: str | None = None, watch_: bool = False) -> None:
    import signal

    from envtool.cli.logs import LogPrinter

    name = api.project_name(ctx.obj.file, ctx.obj.directory)
    printer = LogPrinter(api.log_files(ctx.obj.file, ctx.obj.directory), name, tail=None)
    stop = []
    signal.signal(signal.SIGINT, lambda n, f: stop.append(n))
    signal.signal(signal.SIGTERM, lambda n, f: stop.append(n))
    printer.print_existing()
    if watch_:
        w = api.watcher(ctx.obj.file, ctx.obj.directory, env, echo=False)
        printer.add(*api.watch_log(name))
        w.initial_sync()
        w.run(poll=printer.poll, should_stop=lambda: bool(stop))
    else:
        printer.follow(lambda: bool(stop))
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    render.info("stopping the stack (Ctrl-C again to kill)")
    api.down(ctx.obj.file, ctx.obj.directory)


def down(ctx: typer.Context, volumes: bool = typer.Option(False, "-v", "--volumes",
                                                          help="Also remove named volumes.")) -> None:
    """Stop and remove the stack: containers, network, rules, state (volumes with --volumes)."""
    if not api.down(ctx.obj.file, ctx.obj.directory, volumes):
        render.info("nothing to do: the stack is not running")


def ps(ctx: typer.Context, json_: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the stack's containers."""
    rows = api.ps(ctx.obj.file, ctx.obj.directory)
    if json_:
        render.print_json(rows)
        return
    from envtool._util.units import format_duration

    render.table(["service", "replica", "state", "health", "pid", "ip", "ports", "uptime", "restarts"],
                 [[r["service"], str(r["replica"]), r["status"], r.get("health") or "", str(r.get("pid") or ""),
                   r.get("ip") or "", ",".join(r.get("ports") or []),
                   format_duration(round(r["uptime"])) if r.get("uptime") else "", str(r.get("restarts", 0))]
                  for r in rows])


def logs(ctx: typer.Context, services: list[str] = typer.Argument(None, help="Services (default: all)."),
         follow: bool = typer.Option(False, "-f", "--follow", help="Keep printing new output."),
         tail: int | None = typer.Option(None, "--tail", help="Only the last N lines of each container.")) -> None:
    """Print the containers' output, each line prefixed with its container."""
    from envtool.cli.logs import LogPrinter

    name = api.project_name(ctx.obj.file, ctx.obj.directory)
    printer = LogPrinter(api.log_files(ctx.obj.file, ctx.obj.directory, services or None), name, tail)
    printer.print_existing()
    if follow:
        with contextlib.suppress(KeyboardInterrupt):
            printer.follow()


def exec_(ctx: typer.Context, service: str = typer.Argument(..., help="Service to run in."),
          command: list[str] = typer.Argument(..., help="Command and arguments."),
          tty: bool = typer.Option(False, "-t", "--tty", help="Allocate a pseudo-terminal."),
          interactive: bool = typer.Option(False, "-i", "--interactive", help="Accepted; stdin is attached."),
          index: int = typer.Option(1, "--index", help="Replica number."),
          env: list[str] = typer.Option([], "-e", "--env", help="Extra environment variable NAME=value."),
          user: str | None = typer.Option(None, "-u", "--user", help="Run as this user."),
          workdir: str | None = typer.Option(None, "-w", "--workdir", help="Working directory."),
          ) -> None:
    """Run a command in a running service container (its namespaces, cgroup, user, env and cwd)."""
    import socket

    from envtool.runtime import enter
    from envtool.runtime.launcher import _PtyRelay, _receive_console

    spec = api.exec_spec(service, command, ctx.obj.file, ctx.obj.directory, index, env, user, workdir)
    console = socket.socketpair() if tty else None
    pid, report = enter.spawn(spec, console_fd=console[1].fileno() if console else None)
    master = _receive_console(console) if console else None
    failure = enter.report(pid, report)
    if failure is not None:
        os.waitpid(pid, 0)
        raise failure.to_error(f"{service}-{index}")
    if master is not None:
        relay = _PtyRelay(master)
        import select

        pidfd = os.pidfd_open(pid)
        try:
            while True:
                ready, _, _ = select.select([pidfd, *relay.fds()], [], [])
                relay.pump(ready)
                if pidfd in ready:
                    relay.drain()
                    break
        finally:
            relay.restore()
            os.close(pidfd)
            os.close(master)
    _, status = os.waitpid(pid, 0)
    sys.stdout.flush()
    raise typer.Exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


def _control(ctx: typer.Context, op: str, services: list[str] | None) -> None:
    final = api.control_services(op, services or [], ctx.obj.file, ctx.obj.directory)
    for r in final.get("containers", []):
        render.info(f"{r['name']}: {r['status']}")


def stop(ctx: typer.Context, services: list[str] = typer.Argument(None)) -> None:
    """Stop services (default: all); they stay in the stack."""
    _control(ctx, "stop", services)


def start(ctx: typer.Context, services: list[str] = typer.Argument(None)) -> None:
    """Start stopped services."""
    _control(ctx, "start", services)


def restart(ctx: typer.Context, services: list[str] = typer.Argument(None)) -> None:
    """Restart services."""
    _control(ctx, "restart", services)


def scale(ctx: typer.Context, targets: list[str] = typer.Argument(..., help="SERVICE=N ..."),
          env: str | None = EnvOpt) -> None:
    """Change the number of replicas of running services."""
    wanted = {}
    for t in targets:
        name, sep, n = t.partition("=")
        if not sep or not n.isdigit():
            from envtool.errors import UsageError

            raise UsageError(f"invalid scale target {t!r}: use SERVICE=N")
        wanted[name] = int(n)
    from envtool.cli.progress import reporter

    final = api.up(ctx.obj.file, ctx.obj.directory, env, None, reporter("auto", only_work=True), stackup.progress_event,
                   scale=wanted)
    for r in final.get("containers", []):
        if r["service"] in wanted:
            render.info(f"{r['name']}: {r['status']}")


def watch(ctx: typer.Context, env: str | None = EnvOpt) -> None:
    """Apply develop.watch rules to the running stack until Ctrl-C."""
    import signal

    w = api.watcher(ctx.obj.file, ctx.obj.directory, env, echo=True)
    stop = []
    signal.signal(signal.SIGINT, lambda n, f: stop.append(n))
    signal.signal(signal.SIGTERM, lambda n, f: stop.append(n))
    render.info("watching " + ", ".join(w.roots()) + " (Ctrl-C to stop)")
    w.initial_sync()
    w.run(should_stop=lambda: bool(stop))
