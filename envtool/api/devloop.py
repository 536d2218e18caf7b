"""The development loop's hooks into the stack, and the watcher run in the background."""

from __future__ import annotations

import os
from typing import Any

from envtool.api.images import lock
from envtool.api.project import load_project, project_name, project_paths
from envtool.api.stack import control_services, exec_spec, up
from envtool.errors import SpecError


class StackHooks:
    """What the watcher may do to a running stack (devloop.watch.Hooks)."""

    def __init__(self, file: str | None, directory: str | None, env: str | None, echo: bool) -> None:
        self.file, self.directory, self.env, self.echo = file, directory, env, echo
        self.name = project_name(file, directory)
        self.paths = project_paths(self.name)

    def _running(self, service: str) -> list[Any]:
        from envtool.stack import state

        recs = state.records(state.load(self.paths)).values()
        return [r for r in recs if r.service == service and state.alive(r.pid, r.start_time)]

    def replicas(self, service: str) -> list[tuple[int, str]]:
        return [(r.pid, r.spec["user"]) for r in self._running(service)]

    def restart(self, service: str) -> None:
        control_services("restart", [service], self.file, self.directory)

    def rebuild(self, service: str) -> None:
        """Re-resolve the service's recipe when it changed (updating its envtool.lock entry),
        then rebuild and recreate the service."""
        from envtool.image.resolve import lock_path
        from envtool.lock import io as lock_io
        from envtool.lock.drift import drift

        loaded = load_project(self.file, self.directory, self.env)
        image = loaded.project.services[service].image
        current = lock_io.read(lock_path(loaded.directory))
        if image in loaded.project.images and current is not None and drift(loaded.project.images, current, [image]):
            lock(self.file, self.directory, update=[image])
            self.log(f"{service}: recipe {image!r} changed; envtool.lock entry updated")
        up(self.file, self.directory, self.env, services=[service])

    def exec(self, service: str, argv: tuple[str, ...]) -> int:
        from envtool.runtime import enter

        code = 0
        for r in self._running(service):
            spec = exec_spec(service, list(argv), self.file, self.directory, r.spec["replica"])
            devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
            try:
                code = code or enter.run(spec, r.spec["name"], stdio=(devnull, devnull, devnull))
            finally:
                os.close(devnull)
        return code

    def log(self, text: str) -> None:
        import sys
        import time

        from envtool.devloop.daemon import log_of

        line = f"[watch] {text}"
        self.paths.logs.mkdir(parents=True, exist_ok=True)
        with os.fdopen(self.paths.open_log(log_of(self.paths)[0]), "a") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {line}\n")
        if self.echo:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()


def watcher(file: str | None = None, directory: str | None = None, env: str | None = None,
            echo: bool = True) -> Any:
    """A Watcher for the project's develop.watch rules, acting on its running stack."""
    from envtool.devloop.watch import Watcher, rules_for

    loaded = load_project(file, directory, env)
    rules = rules_for(loaded.project, str(loaded.directory))
    if not rules:
        raise SpecError("no service has develop.watch rules",
                        hint='add [services.NAME.develop] watch = [{ path = "...", action = "sync+restart", '
                             'target = "/app" }]', location=None)
    # absolute: a detached watcher runs in "/", where a relative -C (or none) names nothing
    hooks = StackHooks(str(loaded.file.resolve()), str(loaded.directory.resolve()), env, echo)
    return Watcher(rules, str(loaded.directory), hooks)


def start_watch_daemon(file: str | None = None, directory: str | None = None, env: str | None = None) -> None:
    """`up -d --watch`: a detached watcher for the project (stopped by `down`)."""
    import signal

    from envtool.devloop import daemon
    from envtool.stack.control import detach

    w = watcher(file, directory, env, echo=False)
    paths = project_paths(w.hooks.name)
    stop_watch_daemon(paths)

    def body() -> None:
        def ready() -> None:                     # the first wake-up comes once watches are set
            daemon.record(paths)

        stop: list[int] = []
        signal.signal(signal.SIGTERM, lambda n, f: stop.append(n))
        try:
            w.initial_sync()
            w.run(poll=ready, should_stop=lambda: bool(stop))
        except BaseException as e:  # noqa: BLE001 - a detached watcher reports in the stack's log
            w.hooks.log(f"stopped: {e}")

    detach(body)
    import time

    deadline = time.monotonic() + 10
    while not daemon.pid_file(paths).exists():            # return once it is watching
        if time.monotonic() > deadline:
            from envtool.errors import RuntimeFailure

            raise RuntimeFailure("the watcher did not start within 10 s", hint="see `envtool logs watch`")
        time.sleep(0.01)


def stop_watch_daemon(paths: Any) -> None:
    from envtool.devloop import daemon

    daemon.stop(paths)
