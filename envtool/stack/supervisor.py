"""The per-project supervisor: one single-threaded event loop (selectors + pidfds + timers) that
owns the stack's containers, network, DNS and control socket.

It starts containers in depends_on order (waiting for healthy / completed), runs healthchecks,
applies restart policies with back-off, rotates logs and records every resource in state.json
before creating it.  Containers write their output straight to log files, so they outlive a
killed supervisor; a new one re-adopts them from state.json (pid + start time).
"""

from __future__ import annotations

import functools
import heapq
import itertools
import json
import os
import selectors
import shutil
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from envtool._util.unix_socket import addressable
from envtool.errors import EnvtoolError
from envtool.image.store import Store
from envtool.network import nft
from envtool.network.dns import DnsServer
from envtool.runtime import enter, launcher
from envtool.runtime.cgroups import detect
from envtool.runtime.namespaces import fd_path
from envtool.stack import restart, state
from envtool.stack.convert import service_config
from envtool.stack.graph import levels
from envtool.stack.health import HealthState
from envtool.stack.network import ProjectNetwork
from envtool.stack.plan import plan_up
from envtool.stack.spec import ContainerSpec, StackSpec, container_from_json, stack_from_json, to_json

LOG_MAX = 10 * 1024 * 1024
STARTING_PROBE = 0.1           # seconds between healthchecks until the first success
RUNNING = ("starting", "running", "healthy", "unhealthy")
IDLE_EXIT = 60.0                 # seconds without containers before an idle supervisor exits


def _summary(actions: list[Any]) -> str:
    """'create 3 (a-1, a-2, b-1), recreate 1 (c-1)': one log line however large the stack."""
    kinds: dict[str, list[str]] = {}
    for a in actions:
        if a.kind != "keep":
            kinds.setdefault(a.kind, []).append(a.container)
    parts = [f"{k} {len(v)} ({', '.join(v[:3])}{', …' if len(v) > 3 else ''})" for k, v in kinds.items()]
    return ", ".join(parts) or "nothing to change"


@functools.lru_cache(maxsize=8192)
def _spec_json(spec: ContainerSpec) -> Any:
    """A spec's JSON form, made once per spec: specs are frozen, and state is saved at every change."""
    return to_json(spec)


@dataclass
class Managed:
    spec: ContainerSpec
    container: launcher.Container | None = None
    status: str = "created"
    address: str = ""
    exit_code: int | None = None
    oom_killed: bool = False
    restarts: int = 0
    started_mono: float = 0.0
    started_wall: float = 0.0
    stopped_by_user: bool = False
    error: str = ""                                       # why it could not be started
    start_time: int | None = None                         # of PID 1, in clock ticks (pid reuse guard)
    health: HealthState | None = None
    probe: tuple[int, int, int, float] | None = None     # pid, pidfd, report fd, deadline

    def row(self) -> dict[str, Any]:
        c = self.container
        return {"name": self.spec.name, "service": self.spec.service, "replica": self.spec.replica,
                "status": self.status, "health": self.health.status if self.health else None,
                "pid": c.pid if c and self.status in RUNNING else None, "ip": self.address,
                "ports": [f"{p.host_ip or '0.0.0.0'}:{p.published}->{p.target}/{p.protocol}"
                          for p in self.spec.ports if p.published],
                "uptime": round(time.time() - self.started_wall, 1) if self.status in RUNNING else None,
                "restarts": self.restarts, "exit_code": self.exit_code, "oom_killed": self.oom_killed,
                "image": self.spec.image}


@dataclass
class Job:
    """An `apply`: levels of services started in order, each waiting for its dependents' conditions."""
    client: socket.socket | None
    levels: list[list[str]]
    needs: dict[str, set[str]]                 # service -> conditions dependents wait for
    index: int = -1
    done: bool = False


class Supervisor:
    def __init__(self, store_root: str, project: str) -> None:
        self.store = Store(store_root)
        self.project = project
        self.host_key = state.host_key(self.store.root, project)    # names its bridge, veths, nft table
        self.paths = state.Paths.for_project(self.store.root, project)
        self.paths.logs.mkdir(exist_ok=True)     # the root exists: the lock is in it
        self.sel = selectors.DefaultSelector()
        self.timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self.managed: dict[str, Managed] = {}
        self.stack: StackSpec | None = None
        self.net: ProjectNetwork | None = None
        self.dns: DnsServer | None = None
        self.job: Job | None = None
        self.cgroups = detect()
        self.init_path: str | None = None
        self.exit_requested = False
        self.data = state.load(self.paths) or {"project": project, "containers": {}}

    # ---- event loop ---------------------------------------------------------------------------
    def serve(self) -> None:
        """Run until `down` or idleness; the caller holds the project's lock (see `take_lock`)."""
        self.data["supervisor_pid"] = os.getpid()
        self._listen()
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, lambda n, f: None)
        self.sel.register(wake_r, selectors.EVENT_READ, self._on_signal)
        self._adopt()
        self._every(10.0, self._rotate_logs)
        self.idle_since = time.monotonic()
        self._every(5.0, self._exit_if_idle)
        while not self.exit_requested:
            timeout = max(0.0, self.timers[0][0] - time.monotonic()) if self.timers else None
            for key, _ in self.sel.select(timeout):
                try:
                    key.data(key.fileobj)
                except Exception as e:  # noqa: BLE001 - one failed event must not take the stack down
                    self._fail_job(e)
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                _, _, fn = heapq.heappop(self.timers)
                fn()
        self._log("exit")

    def _exit_if_idle(self) -> None:
        """A supervisor with nothing to supervise (its `up` died while building, say) goes away
        after a minute instead of waiting forever; the next `up` starts another."""
        if self.managed or (self.job and not self.job.done):
            self.idle_since = time.monotonic()
        elif time.monotonic() - self.idle_since > IDLE_EXIT:
            self._log("nothing to supervise: exit")
            for p in (self.paths.socket, self.paths.lock):     # no socket left that refuses to answer
                p.unlink(missing_ok=True)
            self.exit_requested = True

    def _fail_job(self, e: Exception) -> None:
        """Log the failure and answer the `up` waiting for the current job, if any."""
        import traceback

        if not isinstance(e, EnvtoolError):
            traceback.print_exc()
        self._log(f"error: {e}")
        job = self.job
        if job and not job.done:
            job.done = True
            err = e.to_dict() if isinstance(e, EnvtoolError) else {"code": "internal", "message": str(e)}
            self._reply(job.client, {"ok": False, "error": err})
            self._close(job.client)

    def _on_signal(self, fd: int) -> None:
        try:
            os.read(fd, 64)
        except BlockingIOError:
            return
        self._down(remove_volumes=False)

    def _at(self, delay: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self.timers, (time.monotonic() + delay, next(self._seq), fn))

    def _every(self, period: float, fn: Callable[[], None]) -> None:
        def tick() -> None:
            fn()
            self._at(period, tick)
        self._at(period, tick)

    def _log(self, text: str) -> None:
        now = time.time()
        print(f"{time.strftime('%H:%M:%S', time.localtime(now))}.{int(now * 1000) % 1000:03d} {text}", flush=True)

    def _save(self) -> None:
        self.data["containers"] = {
            n: {"spec": _spec_json(m.spec), "pid": m.container.pid if m.container else None,
                "start_time": m.start_time if m.container and m.status in RUNNING else None,
                "status": m.status, "hash": m.spec.hash, "image": m.spec.image, "service": m.spec.service,
                "address": m.address, "restarts": m.restarts, "exit_code": m.exit_code,
                "started_wall": m.started_wall}
            for n, m in self.managed.items()}
        if self.net:
            self.data["subnet"] = str(self.net.subnet)
            self.data["bridge"] = self.net.bridge
            self.data["leases"] = self.net.leases
        state.save(self.paths, self.data)

    # ---- control socket -----------------------------------------------------------------------
    def _listen(self) -> None:
        try:
            os.unlink(self.paths.socket)
        except FileNotFoundError:
            pass
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        staged = self.paths.socket.with_name(f".{self.paths.socket.name}.{os.getpid()}")
        staged.unlink(missing_ok=True)          # left by a killed supervisor of the same pid
        old = os.umask(0o077)            # root only: the socket controls containers
        try:
            with addressable(staged) as address:
                srv.bind(address)
        finally:
            os.umask(old)
        srv.listen(16)
        os.rename(staged, self.paths.socket)   # it appears listening: a client never sees it refuse
        srv.setblocking(False)
        self.sel.register(srv, selectors.EVENT_READ, self._accept)

    def _accept(self, srv: socket.socket) -> None:
        try:
            conn, _ = srv.accept()
        except BlockingIOError:
            return
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        uid = int.from_bytes(creds[4:8], "little")
        if uid != 0:
            conn.close()
            return
        conn.setblocking(True)
        conn.settimeout(5)
        try:
            line = conn.makefile("rb").readline()
            request = json.loads(line)
        except (OSError, ValueError):
            conn.close()
            return
        conn.settimeout(None)
        try:
            self._handle(conn, request)
        except EnvtoolError as e:
            self._reply(conn, {"ok": False, "error": e.to_dict()})
            conn.close()

    def _send(self, conn: socket.socket | None, msg: dict[str, Any]) -> None:
        if conn is None:
            return
        try:
            conn.sendall((json.dumps(msg) + "\n").encode())
        except OSError:
            pass

    def _reply(self, conn: socket.socket | None, msg: dict[str, Any]) -> None:
        self._send(conn, {"done": True, **msg})

    def _handle(self, conn: socket.socket, req: dict[str, Any]) -> None:
        op = req.get("op")
        if op == "ps":
            self._reply(conn, {"ok": True, "containers": [m.row() for m in self._ordered()],
                               "subnet": str(self.net.subnet) if self.net else None})
            conn.close()
        elif op == "apply":
            self._apply(stack_from_json(req["stack"]), conn)
        elif op == "down":
            self._down(bool(req.get("volumes")), conn)
        elif op in ("stop", "start", "restart"):
            self._control(op, req.get("services") or [], conn)
        else:
            self._reply(conn, {"ok": False, "error": {"code": "usage", "message": f"unknown op {op!r}"}})
            conn.close()

    def _ordered(self) -> list[Managed]:
        return sorted(self.managed.values(), key=lambda m: (m.spec.service, m.spec.replica))

    # ---- network ------------------------------------------------------------------------------
    def _ensure_network(self, stack: StackSpec) -> None:
        if self.net is None:
            others = [s for p in state.projects(self.store.root) if p != self.project
                      for s in [state.load(state.Paths.for_project(self.store.root, p)).get("subnet")] if s]
            self.net = ProjectNetwork.choose(self.host_key, stack.subnet, self.data.get("subnet"), others)
            self.net.leases.update(self.data.get("leases") or {})
            self.data["subnet"], self.data["bridge"] = str(self.net.subnet), self.net.bridge
            self.data["nft_table"] = nft.table_name(self.host_key)
            self._save()                                 # recorded before it is created
            self.net.up()
        if self.dns is None:
            self.dns = DnsServer(self.net.gateway, self._lookup, clients=str(self.net.subnet))
            for s in self.dns.fileno_list():
                self.sel.register(s, selectors.EVENT_READ, self.dns.handle)
        rules = [nft.PortRule(p.host_ip, p.published, p.protocol, self.net.allocator.allocate(c.name), p.target)
                 for c in stack.containers for p in c.ports if p.published]
        self.net.reserve_ports(rules)
        self.net.apply_ports(rules)

    def _lookup(self, name: str) -> list[str] | None:
        suffix = f".{self.project}"
        if name.endswith(suffix):
            name = name[: -len(suffix)]
        hits = [m.address for m in self._ordered() if m.address and (
            m.spec.service == name or m.spec.name == name or f"{m.spec.service}-{m.spec.replica}" == name)]
        return hits or None

    # ---- apply (up) ---------------------------------------------------------------------------
    def _apply(self, stack: StackSpec, conn: socket.socket) -> None:
        if self.job and not self.job.done:
            self._reply(conn, {"ok": False, "error": {"code": "busy", "message": "another up is in progress"}})
            conn.close()
            return
        self.stack = stack
        self.data["env"] = stack.env
        self.data["release"] = stack.release
        self.data["directory"] = stack.directory
        if any(c.init for c in stack.containers) and self.init_path is None:
            self.init_path = launcher.find_init()
        actual = {n: {"hash": m.spec.hash, "image": m.spec.image, "status": m.status, "service": m.spec.service}
                  for n, m in self.managed.items()}
        actions = plan_up(stack, actual)
        self._log(f"apply: {_summary(actions)}")
        wanted = {c.name: c for c in stack.containers}
        for a in actions:
            if a.kind in ("remove", "recreate"):
                self._send(conn, {"event": "action", "text": a.describe()})
                self._remove_container(a.container)
        self._ensure_network(stack)
        for a in actions:
            if a.kind == "keep":
                self.managed[a.container].spec = wanted[a.container]
            elif a.kind in ("create", "recreate"):
                self.managed[a.container] = Managed(wanted[a.container])
            elif a.kind == "start":
                self.managed[a.container].spec = wanted[a.container]
        deps = stack.dependencies()
        needs: dict[str, set[str]] = {}
        for d in deps.values():
            for dep, cond in d.items():
                needs.setdefault(dep, set()).add(cond)
        self.job = Job(conn, levels(deps), needs)
        self._save()
        self._advance()

    def _advance(self) -> None:
        job = self.job
        if job is None or job.done:
            return
        while True:
            if job.index >= 0:
                verdict = self._level_verdict(job.levels[job.index], job.needs)
                if verdict is None:
                    return                          # still waiting
                if verdict:                          # a failure message
                    job.done = True
                    self._reply(job.client, {"ok": False, "error": {"code": "dependency-failed",
                                                                    "message": verdict}})
                    self._close(job.client)
                    return
            job.index += 1
            if job.index >= len(job.levels):
                job.done = True
                self._reply(job.client, {"ok": True, "containers": [m.row() for m in self._ordered()]})
                self._close(job.client)
                return
            level = set(job.levels[job.index])
            self._start_many([m for m in self._ordered() if m.spec.service in level and m.status not in RUNNING])

    def _level_verdict(self, services: list[str], needs: dict[str, set[str]]) -> str | None:
        """None while waiting, "" when the level is done, else why it failed."""
        for service in services:
            members = [m for m in self.managed.values() if m.spec.service == service]
            conds = needs.get(service, {"started"})
            for m in members:
                if m.status == "failed":
                    return f"service {service!r} could not be started: {m.error}"
                if "completed" in conds:
                    if m.status == "exited" and m.exit_code not in (0, None):
                        return (f"service {service!r} did not complete successfully "
                                f"(exit code {m.exit_code}); services depending on it were not started")
                    if m.status != "exited":
                        return None
                if "healthy" in conds:
                    if m.status == "unhealthy" or (m.status == "exited" and not self._will_restart(m)):
                        detail = f": {m.health.last_output.strip()[:200]}" if m.health and m.health.last_output else ""
                        return (f"service {service!r} never became healthy (status {m.status}){detail}; "
                                "services depending on it were not started")
                    if m.status != "healthy":
                        return None
                if conds == {"started"} and m.status not in RUNNING and m.status != "exited":
                    return None
        return ""

    def _will_restart(self, m: Managed) -> bool:
        return restart.should_restart(m.spec.restart, m.exit_code or 0, m.stopped_by_user)

    # ---- containers ---------------------------------------------------------------------------
    def _start_many(self, members: list[Managed]) -> None:
        """Fork every member's container first, then wait for each: their setups (and the
        kernel's cgroup moves, 5-20 ms each on cgroup v1) overlap instead of adding up."""
        for m in members:
            m.stopped_by_user = False
            m.status = "creating"
        self._save()                                     # the whole batch is recorded before any of it exists
        spawned = [(m, self._spawn(m)) for m in members]
        for m, pending in spawned:
            if pending is not None:
                self._finish_start(m, *pending)
        self._save()

    def _spawn(self, m: Managed) -> tuple[launcher.Spawned, list[int]] | None:
        """Network, then the forked child; None (and the member failed) when either fails.  The
        fds returned (the netns the child joins through /proc) stay open until it reports."""
        assert self.net is not None
        spec = m.spec
        fds: list[int] = []
        try:
            netns_fd, m.address = self.net.attach(spec.name)
            fds.append(netns_fd)
            log_fd = os.open(self.paths.log(spec.name), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fds.append(log_fd)
            devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            fds.append(devnull)
            hosts = tuple((mm.address, f"{mm.spec.service}-{mm.spec.replica} {mm.spec.name}")
                          for mm in self._ordered() if mm.address and mm is not m)
            cfg = service_config(spec, self.store, fd_path(netns_fd), hosts,
                                 f"nameserver {self.net.gateway}\noptions ndots:0\n",
                                 self.init_path if spec.init else None, self.project)
            return launcher.spawn(cfg, cgroups=self.cgroups, stdio=(devnull, log_fd, log_fd),
                                  seccomp_cache=str(self.store.cache_dir / "seccomp")), fds
        except EnvtoolError as e:
            for fd in fds:
                os.close(fd)
            self._start_failed(m, e)
            return None

    def _finish_start(self, m: Managed, pending: launcher.Spawned, fds: list[int]) -> None:
        spec = m.spec
        try:
            m.container = launcher.finish(pending)
        except EnvtoolError as e:
            self._start_failed(m, e)
            return
        finally:
            for fd in fds:
                os.close(fd)
        m.started_mono, m.started_wall = time.monotonic(), time.time()
        m.start_time = state.proc_start_time(m.container.pid)
        m.exit_code = None
        m.status = "starting" if spec.health else "running"
        m.health = HealthState(spec.health.retries, spec.health.start_period) if spec.health else None
        self.sel.register(m.container.pidfd, selectors.EVENT_READ, lambda fd, m=m: self._on_exit(m))
        if spec.health:
            self._at(min(spec.health.interval, STARTING_PROBE / 2), lambda m=m, c=m.container: self._probe(m, c))
        self._log(f"{spec.name}: started pid {m.container.pid} at {m.address}")

    def _start_failed(self, m: Managed, e: EnvtoolError) -> None:
        m.status, m.exit_code, m.error = "failed", 127, e.message + (f" (hint: {e.hint})" if e.hint else "")
        self._write_log(m.spec.name, f"[envtool] {e}")
        self._log(f"{m.spec.name}: {e}")
        self._save()
        self._advance()

    def _rotate_logs(self) -> None:
        """Copy-truncate: the container keeps its O_APPEND fd; one previous file is kept."""
        for m in self.managed.values():
            path = self.paths.log(m.spec.name)
            try:
                if path.stat().st_size > LOG_MAX:
                    shutil.copyfile(path, path.with_suffix(".log.1"))
                    os.truncate(path, 0)
            except OSError:
                continue

    def _write_log(self, name: str, text: str) -> None:
        fd = os.open(self.paths.log(name), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "a") as f:
            f.write(text + "\n")

    def _on_exit(self, m: Managed) -> None:
        c = m.container
        assert c is not None
        self.sel.unregister(c.pidfd)
        info = launcher.reap(c)
        launcher.cleanup(c, remove_state=False)
        self._cancel_probe(m)
        m.exit_code = info.code if info else None
        m.oom_killed = bool(info and info.oom_killed)
        ran = time.monotonic() - m.started_mono
        if m.oom_killed:
            self._write_log(m.spec.name, f"[envtool] {m.spec.name} was OOM-killed")
        if self.net:
            self.net.detach(m.spec.name)
        if self._will_restart(m) and not self.exit_requested:
            delay = restart.backoff(m.restarts, ran)
            m.status = "restarting"
            m.restarts += 1
            self._log(f"{m.spec.name}: exited {m.exit_code}, restarting in {delay:.1f}s")
            self._at(delay, lambda m=m: self._restart_due(m))
        else:
            m.status = "exited"
            self._log(f"{m.spec.name}: exited {m.exit_code}")
        self._save()
        self._advance()

    def _restart_due(self, m: Managed) -> None:
        if m.status == "restarting" and self.managed.get(m.spec.name) is m:
            self._start_many([m])

    # ---- healthchecks -------------------------------------------------------------------------
    def _probe(self, m: Managed, c: launcher.Container) -> None:
        if m.container is not c or m.status not in ("starting", "healthy", "unhealthy") or m.probe:
            return
        spec, hc = m.spec, m.spec.health
        assert hc is not None
        r, w = os.pipe2(os.O_CLOEXEC)
        devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            pid, report = enter.spawn(enter.EnterSpec(
                c.pid, hc.command, spec.env, spec.workdir, spec.user, frozenset(spec.capabilities),
                tuple(c.cgroup.procs_files()), _bpf(self.store, spec.capabilities)), stdio=(devnull, w, w))
        except OSError as e:
            os.close(r)
            self._health_result(m, False, f"cannot start healthcheck: {e}")
            return
        finally:
            os.close(w)
            os.close(devnull)
        os.close(report)
        pidfd = os.pidfd_open(pid)
        m.probe = (pid, pidfd, r, time.monotonic() + hc.timeout)
        os.set_blocking(r, False)
        self.sel.register(pidfd, selectors.EVENT_READ, lambda fd, m=m: self._probe_done(m, timed_out=False))
        self._at(hc.timeout, lambda m=m, p=m.probe: self._probe_timeout(m, p))

    def _probe_timeout(self, m: Managed, probe: tuple[int, int, int, float] | None) -> None:
        if m.probe is probe and probe is not None:
            try:
                os.kill(probe[0], signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._probe_done(m, timed_out=True)

    def _probe_done(self, m: Managed, timed_out: bool) -> None:
        if m.probe is None:
            return
        pid, pidfd, out_fd, _ = m.probe
        m.probe = None
        self.sel.unregister(pidfd)
        os.close(pidfd)
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            status = 1 << 8
        try:
            output = os.read(out_fd, 4096).decode("utf-8", "replace")
        except OSError:
            output = ""
        os.close(out_fd)
        ok = not timed_out and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        self._health_result(m, ok, "timed out" if timed_out else output)

    def _cancel_probe(self, m: Managed) -> None:
        if m.probe:
            pid, pidfd, out_fd, _ = m.probe
            m.probe = None
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.sel.unregister(pidfd)
            os.close(pidfd)
            os.close(out_fd)

    def _health_result(self, m: Managed, ok: bool, output: str) -> None:
        if m.health is None or m.status not in ("starting", "healthy", "unhealthy"):
            return
        before = m.health.status
        m.status = m.health.record(ok, time.monotonic() - m.started_mono, output)
        if m.status != before:
            self._log(f"{m.spec.name}: {m.status}")
            self._save()
        self._advance()
        hc = m.spec.health
        assert hc is not None
        # while starting, probe often (Compose's start_interval) so dependants wait as little as possible
        interval = hc.interval if m.status != "starting" else min(hc.interval, STARTING_PROBE)
        c = m.container
        self._at(interval, lambda m=m, c=c: self._probe(m, c) if c is not None else None)

    # ---- stop / down --------------------------------------------------------------------------
    def _stop(self, members: list[Managed]) -> None:
        """Stop signal to all, wait up to the longest grace period, SIGKILL what remains."""
        live = [m for m in members if m.container is not None and m.status in RUNNING]
        for m in members:
            m.stopped_by_user = True
            if m.status == "restarting":
                m.status = "stopped"
        for m in live:
            self._cancel_probe(m)
            try:
                signal.pidfd_send_signal(m.container.pidfd, getattr(signal.Signals, m.spec.stop_signal))
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + max((m.spec.stop_grace for m in live), default=0)
        pending = {m.container.pidfd: m for m in live}
        while pending and time.monotonic() < deadline:
            ready = select_readable(list(pending), deadline - time.monotonic())
            for fd in ready:
                pending.pop(fd, None)
        for m in pending.values():
            m.container.cgroup.kill_all()
            try:
                signal.pidfd_send_signal(m.container.pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for m in live:
            self.sel.unregister(m.container.pidfd)
            info = launcher.reap(m.container)
            launcher.cleanup(m.container, remove_state=False)
            if self.net:
                self.net.detach(m.spec.name)
            m.exit_code = info.code if info else None
            m.status = "stopped"
        self._save()

    def _remove_container(self, name: str) -> None:
        m = self.managed.pop(name, None)
        if m is None:
            return
        self._stop([m])
        shutil.rmtree(self.store.containers_dir / name, ignore_errors=True)
        if self.net:
            self.net.release(name)
        self._save()

    def _control(self, op: str, services: list[str], conn: socket.socket) -> None:
        targets = [m for m in self._ordered() if not services or m.spec.service in services]
        if not targets:
            raise EnvtoolError(f"no such service: {', '.join(services)}")
        if op in ("stop", "restart"):
            self._stop(targets)
        if op in ("start", "restart"):
            self._start_many([m for m in targets if m.status not in RUNNING])
        self._reply(conn, {"ok": True, "containers": [m.row() for m in self._ordered()]})
        conn.close()

    def _down(self, remove_volumes: bool, conn: socket.socket | None = None) -> None:
        groups: list[list[Managed]] = []
        seen: set[str] = set()
        if self.stack:                       # dependents first, each level stopped in parallel
            for level in reversed(levels(self.stack.dependencies())):
                group = [m for m in self._ordered() if m.spec.service in level]
                seen.update(m.spec.name for m in group)
                groups.append(group)
        groups.insert(0, [m for m in self._ordered() if m.spec.name not in seen])
        for group in groups:
            self._stop(group)
        for m in self._ordered():
            shutil.rmtree(self.store.containers_dir / m.spec.name, ignore_errors=True)
            self._send(conn, {"event": "removed", "name": m.spec.name})
        self.managed.clear()
        if self.dns:
            for s in self.dns.fileno_list():
                self.sel.unregister(s)
            self.dns.close()
            self.dns = None
        if self.net is None and self.data.get("bridge"):
            self.net = ProjectNetwork.choose(self.host_key, None, self.data["subnet"], [])
        if self.net:
            self.net.down()
            self.net = None
        if remove_volumes:
            for v in (self.stack.volumes if self.stack else self.data.get("volumes", [])):
                shutil.rmtree(self.store.root / "volumes" / f"{self.project}_{v}", ignore_errors=True)
        shutil.rmtree(self.paths.logs, ignore_errors=True)
        for p in (self.paths.state, self.paths.socket, self.paths.lock, self.paths.supervisor_log):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
        self._reply(conn, {"ok": True})
        self._close(conn)
        self.exit_requested = True

    def _close(self, conn: socket.socket | None) -> None:
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass

    # ---- re-adoption ----------------------------------------------------------------------------
    def _adopt(self) -> None:
        recorded = self.data.get("containers") or {}
        if not recorded:
            return
        if self.data.get("subnet"):
            self.net = ProjectNetwork.choose(self.host_key, None, self.data["subnet"], [])
            self.net.leases.update(self.data.get("leases") or {})
            self.net.up()
            self.dns = DnsServer(self.net.gateway, self._lookup, clients=str(self.net.subnet))
            for s in self.dns.fileno_list():
                self.sel.register(s, selectors.EVENT_READ, self.dns.handle)
        self.data["volumes"] = self.data.get("volumes", [])
        for name, rec in recorded.items():
            spec = container_from_json(rec["spec"])
            m = Managed(spec, address=rec.get("address", ""), restarts=rec.get("restarts", 0),
                        started_wall=rec.get("started_wall", 0.0))
            self.managed[name] = m
            pid, start_time = rec.get("pid"), rec.get("start_time")
            if state.alive(pid, start_time):
                try:
                    pidfd = os.pidfd_open(pid)
                except OSError:
                    pidfd = -1
                if pidfd >= 0:
                    cfg = service_config(spec, self.store, "host", (), "", None, self.project)
                    m.container = launcher.Container(cfg, pid, self._cgroup(name),
                                                     pidfd)
                    m.status = "running" if not spec.health else rec.get("status", "starting")
                    m.start_time = start_time
                    m.started_mono = time.monotonic()
                    m.health = HealthState(spec.health.retries, 0) if spec.health else None
                    self.sel.register(pidfd, selectors.EVENT_READ, lambda fd, m=m: self._on_adopted_exit(m))
                    if spec.health:
                        self._at(0.1, lambda m=m, c=m.container: self._probe(m, c))
                    self._log(f"{name}: adopted pid {pid}")
                    continue
            m.status = "exited"
            self.managed[name] = m
            cg = self._cgroup(name)
            try:
                cg.remove()
            except EnvtoolError:
                pass
        self._save()

    def _cgroup(self, name: str) -> Any:
        return self.cgroups.open(f"{state.cgroup_parent(self.store.root, self.project)}/{name}")

    def _on_adopted_exit(self, m: Managed) -> None:
        c = m.container
        assert c is not None
        self.sel.unregister(c.pidfd)
        c.exit = launcher.ExitInfo(code=1)          # not our child: its status went to init
        launcher.cleanup(c, remove_state=False)
        m.exit_code = None
        if self._will_restart(m):
            m.status, m.restarts = "restarting", m.restarts + 1
            self._at(restart.backoff(m.restarts, 0), lambda m=m: self._restart_due(m))
        else:
            m.status = "exited"
        self._save()


def select_readable(fds: list[int], timeout: float) -> list[int]:
    import select

    try:
        r, _, _ = select.select(fds, [], [], max(0.0, timeout))
        return r
    except InterruptedError:
        return []


_BPF: dict[tuple[str, ...], bytes] = {}


def _bpf(store: Store, caps: tuple[str, ...]) -> bytes:
    from envtool.runtime.seccomp import bpf_for

    if caps not in _BPF:
        _BPF[caps] = bpf_for(caps, str(store.cache_dir / "seccomp"))
    return _BPF[caps]


def run_daemon(store_root: str, project: str) -> None:
    """Body of the detached supervisor process; its caller holds the project's lock."""
    from envtool.network.netlink import warm

    warm()                       # the ~100 ms pyroute2 import overlaps the CLI's build check
    Supervisor(store_root, project).serve()
