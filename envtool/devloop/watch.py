"""The watcher: watchfiles events → rules.plan → sync / restart / exec / rebuild, one batch at a time.

What to do with a service (restart it, rebuild it, find its replicas) is handed in as `Hooks`, so
this module needs neither the CLI nor the supervisor.  `poll` is called on every wake-up (at least
every 100 ms), which lets an attached `up --watch` print logs from the same loop.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from envtool._util.ignore import read_patterns
from envtool._util.record import dataclass
from envtool.devloop import rules as R
from envtool.devloop.sync import sync_into
from envtool.errors import EnvtoolError, HostError

QUIET = 50          # ms without changes that ends a batch (a git checkout writes faster than that)
QUIET_MAX = 2000    # ms after which a batch is acted on even if changes keep coming


class Hooks(Protocol):
    def replicas(self, service: str) -> list[tuple[int, str]]: ...     # (pid, user) of running replicas
    def restart(self, service: str) -> None: ...
    def rebuild(self, service: str) -> None: ...
    def exec(self, service: str, argv: tuple[str, ...]) -> int: ...
    def log(self, text: str) -> None: ...


@dataclass
class Watcher:
    rules: list[R.Rule]
    project_dir: str
    hooks: Hooks

    def __post_init__(self) -> None:
        self.patterns = read_patterns(self.project_dir)

    def roots(self) -> list[str]:
        out: list[str] = []
        for r in self.rules:
            root = r.path if os.path.isdir(r.path) else os.path.dirname(r.path)
            if not any(root == o or root.startswith(o.rstrip("/") + "/") for o in out):
                out = [o for o in out if not o.startswith(root.rstrip("/") + "/")] + [root]
        return out

    def initial_sync(self) -> None:
        for batch in R.initial(initial_files(self.rules), self.rules, self.project_dir, self.patterns):
            self.apply(batch, initial=True)

    def handle(self, changes: Iterable[tuple[str, str]]) -> None:
        for batch in R.plan(changes, self.rules, self.project_dir, self.patterns):
            try:
                self.apply(batch)
            except (EnvtoolError, OSError) as e:     # one service's trouble never stops the watcher
                self.hooks.log(f"{batch.service}: {e}")

    def apply(self, b: R.ServiceBatch, initial: bool = False) -> None:
        t0 = time.monotonic()
        if b.rebuild:
            self.hooks.rebuild(b.service)
            self.hooks.log(f"{b.service}: rebuilt and recreated in {_ms(t0)}")
            return
        done = []
        if b.files:
            files = list(b.files.values())
            n = 0
            for pid, user in self.hooks.replicas(b.service):
                n = sync_into(pid, user, files)
            what = "initial sync of" if initial else "synced"
            done.append(f"{what} {n} file{'s' if n != 1 else ''}")
        for argv in b.exec:
            code = self.hooks.exec(b.service, argv)
            done.append(f"ran {' '.join(argv)} (exit {code})")
        if b.restart:
            self.hooks.restart(b.service)
            done.append("restarted")
        if done:
            self.hooks.log(f"{b.service}: {', '.join(done)} in {_ms(t0)}")

    def run(self, poll: Callable[[], None] = lambda: None, should_stop: Callable[[], bool] = lambda: False) -> None:
        import watchfiles

        kinds = {watchfiles.Change.added: "added", watchfiles.Change.modified: "modified",
                 watchfiles.Change.deleted: "deleted"}
        force_polling = False
        while not should_stop():
            try:
                for changes in watchfiles.watch(*self.roots(), watch_filter=None, debounce=QUIET_MAX, step=QUIET,
                                                rust_timeout=100, yield_on_timeout=True, force_polling=force_polling,
                                                poll_delay_ms=300, raise_interrupt=False):
                    poll()
                    if changes:
                        self.handle((kinds[c], p) for c, p in changes)
                    if should_stop():
                        return
                return
            except OSError as e:
                if force_polling or "limit" not in str(e).lower() and "watch" not in str(e).lower():
                    raise HostError(f"cannot watch {', '.join(self.roots())}: {e}") from None
                self.hooks.log("the inotify watch limit is reached; falling back to polling every 300 ms "
                               "(raise it with: sysctl fs.inotify.max_user_watches=524288)")
                force_polling = True


def initial_files(rules: list[R.Rule]) -> list[str]:
    """What the initial sync looks at, from the disk: every file under the rules that ask for it."""
    out: list[str] = []
    for rule in rules:
        if not (rule.initial_sync and rule.action in R.SYNC_ACTIONS):
            continue
        if os.path.isfile(rule.path):
            out.append(rule.path)
            continue
        for dirpath, _, files in os.walk(rule.path):
            out += [os.path.join(dirpath, f) for f in files]
    return out


def _ms(t0: float) -> str:
    return f"{round((time.monotonic() - t0) * 1000)} ms"


def rules_for(project: object, directory: str) -> list[R.Rule]:
    """Watch rules of every service of a loaded Project, with absolute paths."""
    out = []
    for name, svc in project.services.items():  # type: ignore[attr-defined]
        for rule in (svc.develop.watch if svc.develop else []):
            out.append(R.Rule(name, os.path.abspath(os.path.join(directory, rule.path)), rule.action.value,
                              rule.target, tuple(rule.ignore), tuple(rule.exec or ()), rule.initial_sync))
    return out
