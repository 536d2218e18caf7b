"""The per-project supervisor: it owns the stack's containers, network, DNS and control socket, and
wires the rooms that do the work:

- loop.py            the event loop (readable fds and pidfds, timers, signals);
- control_server.py  the control socket (requests from the CLI: apply, ps, stop/start/restart, down);
- plan.py            what `apply` changes (plan_up) and when the next level may start (level_verdict);
- health.py          healthcheck state and the prober that runs checks inside containers;
- restart.py         restart policies and back-off;
- update.py          rolling replacement: start-first / stop-first, parallelism, monitor, rollback;
- sockets.py         a container's listening ports and the connections it serves (/proc/PID/net);
- state.py           state.json (typed records), written before anything is created;
- network/project.py the bridge, veths, published ports; network/dns.py the service names.

It starts containers in depends_on order (waiting for healthy / completed), runs healthchecks,
applies restart policies with back-off and rotates logs.  A container that must be replaced (a
changed configuration or image, `restart`, a hot reload) is replaced by a new *instance* of its
replica slot (runtime id `<name>`, `<name>.1`, `<name>.2` …: its own state dir, cgroup, veth and
address) that starts while the old one still serves; once the new one is ready, the published
ports and the slot's service address (what its name resolves to, DNATed by the host) send new
connections to it, and the old one drains and stops (update.py).  Containers write their output straight to
log files, so they outlive a killed supervisor; a new one re-adopts them from state.json (pid + start
time) and from then on treats them as it treats its own.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import time
from typing import Any

from envtool._util.record import dataclass, field
from envtool._util.wait import readable
from envtool.errors import EnvtoolError
from envtool.image.store import Store
from envtool.network import nft
from envtool.network.dns import DnsServer
from envtool.network.project import ProjectNetwork, subnet_lock
from envtool.runtime import launcher, rootless
from envtool.runtime.cgroups import detect
from envtool.runtime.namespaces import fd_path, new_netns
from envtool.stack import restart, sockets, state
from envtool.stack.control_server import ControlServer, close, reply, send
from envtool.stack.convert import enter_spec, service_config
from envtool.stack.graph import levels
from envtool.stack.health import HealthState, Prober
from envtool.stack.loop import EventLoop
from envtool.stack.plan import Member, level_verdict, plan_up
from envtool.stack.spec import ContainerSpec, StackSpec, container_from_json, stack_from_json, to_json
from envtool.stack.state import RUNNING, ContainerRecord, Status
from envtool.stack.update import (
    DONE,
    QUEUED,
    RETIRING,
    STARTING,
    STOPPING,
    UNDONE,
    Replacement,
    ServiceUpdate,
    failure,
)

LOG_MAX = 10 * 1024 * 1024
STARTING_PROBE = 0.1           # seconds between healthchecks until the first success
ACCEPT_PROBE = 0.05            # seconds between connection attempts until a published port accepts
ACCEPT_FAST = 0.01             # ... in the first second after the start
LISTEN_POLL = 0.01             # while a container with a healthcheck starts: how often its sockets are read
QUIET_PROBE = 0.5              # ... and how often its healthcheck runs while it listens on nothing yet
LISTEN_WATCH = 30.0            # how long its sockets are watched (then the probe schedule alone)
LISTEN_POLL = 0.02             # seconds between looks at a starting replacement's listening ports
DRAIN_POLL = 0.02              # seconds between looks at a leaving container's open connections
IDLE_EXIT = 60.0               # seconds without containers before an idle supervisor exits
PROBING = (Status.STARTING, Status.HEALTHY, Status.UNHEALTHY)


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
    status: Status = Status.CREATED
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
    adopted: bool = False              # started by an earlier supervisor: not our child, its status is lost
    accepting: bool = False            # its first published TCP port took a connection
    leaving: bool = False              # being stopped: out of the port map and DNS first
    instance: str = ""                 # runtime id: state dir, cgroup, veth, address lease
    fresh: bool = False                # a new instance: its state dir is made anew at its first start
    copy_from: str = ""                # ... from this instance's upper dir (a restart keeps its files)
    probe_token: int = 0               # the pending healthcheck timer's; a newer schedule cancels it
    listening: bool = False            # its netns has listened on a socket since the start (or we stopped looking)
    last_probe: float = 0.0            # monotonic time of its last healthcheck (0: none yet)
    listen_pending: bool = False       # it began listening while a check ran: the next one at once

    def __post_init__(self) -> None:
        self.instance = self.instance or self.spec.name

    def running(self) -> bool:
        return self.status in RUNNING and bool(self.address) and not self.leaving

    def ready(self) -> bool:
        """Ready for traffic (published ports, service DNS): healthy when it has a healthcheck,
        else running and — when it publishes a TCP port — accepting on it."""
        if self.status not in RUNNING or not self.address or self.leaving:
            return False
        if self.spec.health:
            return self.status == Status.HEALTHY
        return self.accepting or _accept_port(self.spec) is None

    def row(self) -> dict[str, Any]:
        c = self.container
        return {"name": self.spec.name, "service": self.spec.service, "replica": self.spec.replica,
                "status": str(self.status), "health": self.health.status if self.health else None,
                "pid": c.pid if c and self.status in RUNNING else None, "ip": self.address,
                "ports": [f"{p.host_ip or '0.0.0.0'}:{p.published}->{p.target}/{p.protocol}"
                          for p in self.spec.ports if p.published],
                "uptime": round(time.time() - self.started_wall, 1) if self.status in RUNNING else None,
                "restarts": self.restarts, "exit_code": self.exit_code, "oom_killed": self.oom_killed,
                "image": self.spec.image, "instance": self.instance,
                # proven up: healthy, or accepting on its published port (nothing to wait for)
                "proven": self.ready() and (bool(self.spec.health) or _accept_port(self.spec) is not None)}

    def record(self) -> ContainerRecord:
        alive = self.container is not None and self.status in RUNNING
        return ContainerRecord(_spec_json(self.spec), self.status, self.container.pid if self.container else None,
                               self.start_time if alive else None, self.spec.hash, self.spec.image,
                               self.spec.service, self.address, self.restarts, self.exit_code, self.started_wall,
                               self.instance)


def _accept_port(spec: ContainerSpec) -> int | None:
    """The container port whose accepting makes a container without a healthcheck ready."""
    return next((p.target for p in spec.ports if p.published and p.protocol == "tcp"), None)


@dataclass
class Job:
    """An `apply`: levels of services started in order, each waiting for its dependents' conditions."""
    client: socket.socket | None
    levels: list[list[str]]
    needs: dict[str, set[str]]                 # service -> conditions dependents wait for
    index: int = -1
    done: bool = False
    reached: set[str] = field(default_factory=set)         # services whose level has started
    release: str | None = None                  # what ran before (a rollback returns to it)


class Supervisor:
    def __init__(self, store_root: str, project: str) -> None:
        self.store = Store(store_root)
        self.project = project
        self.host_key = state.host_key(self.store.root, project)    # names its bridge, veths, nft table
        self.paths = state.Paths.for_project(self.store.root, project)
        self.paths.logs.mkdir(exist_ok=True)     # the root exists: the lock is in it
        self.loop = EventLoop()
        self.prober = Prober(self.loop, self._on_probe)
        self.managed: dict[str, Managed] = {}          # replica slot → its current instance
        self.retiring: list[Managed] = []              # replaced instances, serving until they leave
        self.updates: dict[str, list[ServiceUpdate]] = {}
        self._pumping = self._pump_again = self._ticking = False
        self.stack: StackSpec | None = None
        self.net: ProjectNetwork | None = None
        self.dns: DnsServer | None = None
        self.job: Job | None = None
        self._applied_ports: tuple[list[nft.PortRule], dict[str, str | None], dict[str, list[str]] | None] | None = None
        self.cgroups = detect()
        self.init_path: str | None = None
        self.data = state.load(self.paths) or {"project": project, "containers": {}}

    # ---- life -----------------------------------------------------------------------------------
    def serve(self) -> None:
        """Run until `down` or idleness; the caller holds the project's lock (see `take_lock`)."""
        self.data["supervisor_pid"] = os.getpid()
        ControlServer(self.paths.socket, self.loop, self._handle).listen()
        self.loop.on_signals((signal.SIGTERM, signal.SIGINT, signal.SIGHUP), lambda: self._down(False))
        self._adopt()
        self.loop.every(10.0, self._rotate_logs)
        self.idle_since = time.monotonic()
        self.loop.every(5.0, self._exit_if_idle)
        self.loop.run(self._fail_job)
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
            self.loop.stop()

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
            reply(job.client, {"ok": False, "error": err})
            close(job.client)

    def _log(self, text: str) -> None:
        now = time.time()
        print(f"{time.strftime('%H:%M:%S', time.localtime(now))}.{int(now * 1000) % 1000:03d} {text}", flush=True)

    def _save(self, ports: bool = True) -> None:
        """Record the state, and bring the published ports in line with who is ready now (unless
        `ports` is False: a network recorded before it exists has no port to route yet)."""
        if ports:
            self._sync_ports()
        self.data["containers"] = {n: m.record().to_json() for n, m in self.managed.items()}
        self.data["retiring"] = {m.instance: m.record().to_json() for m in self.retiring}
        if self.net:
            self.data["subnet"] = str(self.net.subnet)
            self.data["bridge"] = self.net.bridge
            self.data["leases"] = self.net.leases
        state.save(self.paths, self.data)

    # ---- requests -------------------------------------------------------------------------------
    def _handle(self, conn: socket.socket, req: dict[str, Any]) -> None:
        op = req.get("op")
        if op == "ps":
            reply(conn, {"ok": True, "containers": [m.row() for m in self._ordered()],
                         "subnet": str(self.net.subnet) if self.net else None})
            close(conn)
        elif op == "apply":
            self._apply(stack_from_json(req["stack"]), conn)
        elif op == "down":
            self._down(bool(req.get("volumes")), conn)
        elif op in ("stop", "start", "restart"):
            self._control(op, req.get("services") or [], conn)
        else:
            reply(conn, {"ok": False, "error": {"code": "usage", "message": f"unknown op {op!r}"}})
            close(conn)

    def _ordered(self) -> list[Managed]:
        return sorted(self.managed.values(), key=lambda m: (m.spec.service, m.spec.replica))

    def _all(self) -> list[Managed]:
        """Every instance: the slots' current ones and the replaced ones still serving."""
        return self._ordered() + self.retiring

    def _slots(self) -> dict[str, list[Managed]]:
        """Replica slot → its instances (the current one first, then replaced ones still serving)."""
        out: dict[str, list[Managed]] = {}
        for m in self._all():
            out.setdefault(m.spec.name, []).append(m)
        return out

    def _replacements(self, phase: str) -> list[Replacement]:
        return [r for todo in self.updates.values() for u in todo for r in u.items if r.phase == phase]

    def _by_instance(self, instance: str) -> Managed | None:
        return next((m for m in self._all() if m.instance == instance), None)

    def _free_instance(self, slot: str) -> str:
        """A runtime id for a replacing instance of the slot: `slot.1`, `slot.2` …, the first that no
        instance holds (so they alternate); the bare `slot` is the first instance's."""
        used = {m.instance for m in self._all()}
        return next(i for i in (f"{slot}.{n}" for n in range(1, len(used) + 2)) if i not in used)

    # ---- network --------------------------------------------------------------------------------
    def _network_up(self, pinned: str | None = None) -> ProjectNetwork:
        """The bridge and the DNS server: chosen and recorded before they are created, or taken
        again as state.json recorded them (a re-adopting supervisor)."""
        if self.net is None:
            others = [s for p in state.projects(self.store.root) if p != self.project
                      for s in [state.load(state.Paths.for_project(self.store.root, p)).get("subnet")] if s]
            with subnet_lock():                          # no other project or build takes it meanwhile
                self.net = ProjectNetwork.choose(self.host_key, pinned, self.data.get("subnet"), others, new_netns)
                self.net.leases.update(self.data.get("leases") or {})
                self.data["subnet"], self.data["bridge"] = str(self.net.subnet), self.net.bridge
                self.data["nft_table"] = nft.table_name(self.host_key)
                self._save(ports=False)                  # recorded before it is created
                self.net.up()
        if self.dns is None:
            self.dns = DnsServer(self.net.gateway, self._lookup, clients=str(self.net.subnet))
            for s in self.dns.fileno_list():
                self.loop.watch(s, self.dns.handle)
        return self.net

    def _publish(self, stack: StackSpec) -> None:
        """A service address for every replica slot of the stack (what its name resolves to,
        whichever instance serves it), and its published ports held on the host (a port another
        process holds fails the apply before anything changes)."""
        net = self._network_up(stack.subnet)
        for c in stack.containers:
            net.allocator.allocate_service(c.name)
        rules = [nft.PortRule(p.host_ip, p.published, p.protocol, None, p.target)
                 for c in stack.containers for p in c.ports if p.published]
        if rootless.active():      # pasta binds them on the host, each on its address, for the session
            rootless.publish(self.host_key, sorted({(r.host_ip, r.host_port, r.protocol) for r in rules},
                                                   key=lambda r: (r[1], r[2], r[0] or "")))
        else:
            net.reserve_ports(rules)

    def _sync_ports(self) -> None:
        """Each published port goes to the replicas that are ready, balanced by the kernel (an
        nftables numgen map; established connections keep their conntrack entry).  While none is
        ready it goes to every running one (as right after `up -d`, which does not wait for health,
        as Compose's does not), and while none runs it is refused at once.  The table is replaced
        atomically, and only when the set changed."""
        if self.net is None:
            return
        published: dict[tuple[str | None, int, str], list[tuple[Managed, int]]] = {}
        for m in self._all():
            for p in m.spec.ports:
                if p.published:
                    published.setdefault((p.host_ip, p.published, p.protocol), []).append((m, p.target))
        found: set[nft.PortRule] = set()
        for (host_ip, host_port, proto), members in published.items():
            chosen = [x for x in members if x[0].ready()] or [x for x in members if x[0].running()]
            if rootless.active():      # pasta already chose the host address; inside, it arrives on
                host_ip = None         # the session's own (spliced: loopback) address
            found.update(nft.PortRule(host_ip, host_port, proto, m.address, target) for m, target in chosen)
            if not chosen:
                found.add(nft.PortRule(host_ip, host_port, proto, None, members[0][1]))
        rules = sorted(found, key=lambda r: (r.host_port, r.protocol, r.host_ip or "", r.address or "", r.port))
        services = self._service_targets()
        networks = self._networks()
        if (rules, services, networks) != self._applied_ports:
            try:
                self.net.apply_ports(rules, services, networks)
                self._applied_ports = (rules, services, networks)
            except EnvtoolError as e:          # logged; a stop or down must still complete
                self._log(f"published ports: {e}")

    def _service_targets(self) -> dict[str, str | None]:
        """Each replica slot's service address → the instance that takes its new connections: the
        slot's current instance when it is ready, else a replaced one still serving (until its
        successor is ready), else whichever runs; None while none runs (refused at once)."""
        assert self.net is not None
        alloc = self.net.allocator
        # a replacing instance takes the slot once its replacement says it is ready (it may run
        # but not listen yet); until then it only serves when nothing else runs
        proving = {id(r.new) for r in self._replacements(STARTING) if r.new is not None}
        out: dict[str, str | None] = {}
        for slot, members in self._slots().items():
            vip = alloc.service_address(slot) or alloc.allocate_service(slot)
            current = self.managed.get(slot)
            ranked = ([current] if current is not None and current.ready() and id(current) not in proving else []) + \
                [m for m in members if m.ready() and id(m) not in proving] + [m for m in members if m.running()]
            out[vip] = next((m.address for m in ranked if m.address), None)
        return dict(sorted(out.items()))

    def _networks(self) -> dict[str, list[str]] | None:
        """Network → the addresses of the instances on it (live or being created), when the project
        declares networks; None when it does not (every container reaches every other)."""
        live = [m for m in self._all() if m.address and (m.status in RUNNING or m.status == Status.CREATING)]
        if not any(m.spec.networks for m in self._all()):
            return None
        out: dict[str, list[str]] = {}
        for m in live:
            for net in m.spec.networks or ("default",):
                out.setdefault(net, []).append(m.address)
        return {k: sorted(v) for k, v in sorted(out.items())}

    def _lookup(self, name: str, client: str | None = None) -> list[str] | None:
        """A service, `service-N` or container name → the service addresses of its replica slots:
        each stays while instances replace each other behind it (so a client that resolved it
        once, as nginx does for an upstream, keeps reaching the service).  Slots with a ready
        instance first; none ready: those running; none running: all."""
        suffix = f".{self.project}"
        if name.endswith(suffix):
            name = name[: -len(suffix)]
        slots = {slot: named for slot, members in self._slots().items()
                 if (named := [m for m in members if m.address and (name in (
                     m.spec.service, m.spec.name, f"{m.spec.service}-{m.spec.replica}") or name in m.spec.aliases)])}
        asking = next((m for m in self._all() if client is not None and m.address == client), None)
        if asking is not None and asking.spec.networks:     # only services sharing a network
            mine = set(asking.spec.networks)
            slots = {k: v for k, v in slots.items() if mine & set(v[0].spec.networks or ("default",))}
        alloc = self.net.allocator if self.net else None
        order = sorted(slots, key=lambda n: (slots[n][0].spec.service, slots[n][0].spec.replica))
        vip = {n: alloc.service_address(n) if alloc else None for n in order}
        for test in (Managed.ready, Managed.running, lambda m: True):
            found = [a for n in order if (a := vip[n]) and any(test(m) for m in slots[n])]
            if found:
                return found
        return None

    # ---- apply (up) -----------------------------------------------------------------------------
    def _apply(self, stack: StackSpec, conn: socket.socket) -> None:
        if self.job and not self.job.done:
            reply(conn, {"ok": False, "error": {"code": "busy", "message": "another up is in progress"}})
            close(conn)
            return
        previous = self.data.get("release")
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
        services = stack.services()
        self._publish(stack)
        for a in actions:                    # services gone from the stack: nothing replaces them
            if a.kind == "remove" and a.service not in services:
                send(conn, {"event": "action", "text": a.describe()})
                self._remove_container(a.container)
        self.updates = {}
        for a in actions:
            spec = wanted.get(a.container)
            if a.kind in ("keep", "start"):
                assert spec is not None
                self.managed[a.container].spec = spec
            elif a.kind == "create":
                assert spec is not None
                self.managed[a.container] = Managed(spec, fresh=True)
            elif a.kind == "recreate":
                assert spec is not None
                old = self.managed[a.container]
                if self._live(old):
                    r = self._replacement(a.container, old, Managed(spec, instance=self._free_instance(a.container),
                                                                    fresh=True))
                    why = f"; stop-first: {spec.update.why}" if spec.update.why else ""
                    send(conn, {"event": "action", "text": f"{a.describe()} ({r.order}{why})"})
                else:
                    send(conn, {"event": "action", "text": a.describe()})
                    self._remove_container(a.container)
                    self.managed[a.container] = Managed(spec, fresh=True)
            elif a.kind == "remove" and a.service in services:   # a scale down: the replica leaves
                #                                                      once the others are replaced
                old = self.managed[a.container]
                send(conn, {"event": "action", "text": a.describe()})
                if self._live(old):
                    self._replacement(a.container, old, None)
                else:
                    self._remove_container(a.container)
        assert self.net is not None
        for m in self._ordered():
            self.net.allocator.allocate(m.instance)            # recorded before anything is created
        deps = stack.dependencies()
        needs: dict[str, set[str]] = {}
        for d in deps.values():
            for dep, cond in d.items():
                needs.setdefault(dep, set()).add(cond)
        self.job = Job(conn, levels(deps), needs, release=previous)
        # recorded before anything is created; the published ports follow once the first
        # containers are on their way (an nft transaction is ~20 ms the first start need not wait)
        self._save(ports=False)
        self._advance()
        self._sync_ports()

    def _live(self, m: Managed) -> bool:
        return m.container is not None and m.status in RUNNING

    def _replacement(self, slot: str, old: Managed, new: Managed | None, restart_of: bool = False) -> Replacement:
        """Queue the replacement of a running instance (new None: its removal); the old one keeps
        serving meanwhile, listed among the retiring."""
        policy = (new or old).spec.update
        r = Replacement(slot, old, new, policy.order, old_spec=old.spec)
        if new is not None:
            if restart_of:
                new.copy_from = old.instance      # its files (a hot reload's synced ones) come along
            self.managed[slot] = new
        else:
            self.managed.pop(slot, None)
        self.retiring.append(old)
        service = old.spec.service
        todo = self.updates.setdefault(service, [])
        if not todo or todo[-1].failed:
            todo.append(ServiceUpdate(service, policy.parallelism, policy.failure_action))
        todo[-1].items.append(r)
        return r

    def _advance(self) -> None:
        self._pump_updates()
        job = self.job
        if job is None or job.done:
            return
        while True:
            if job.index >= 0:
                level = job.levels[job.index]
                pending = [u for s in level for u in self.updates.get(s, [])]
                if not all(u.finished() for u in pending):
                    return                          # replacements under way
                failed = [f"service {u.service!r}: {u.failed}; {u.outcome}" for u in pending if u.failed]
                if failed:
                    self._finish_job(job, "update-failed", "; ".join(failed))
                    return
                verdict = level_verdict(level, self._members(), job.needs)
                if verdict is None:
                    return                          # still waiting
                if verdict:                          # a failure message
                    self._finish_job(job, "dependency-failed", verdict)
                    return
            job.index += 1
            if job.index >= len(job.levels):
                self._finish_job(job)
                return
            starting = set(job.levels[job.index])
            job.reached |= starting
            queued = {id(r.new) for r in self._replacements(QUEUED)}
            self._start_many([m for m in self._ordered() if m.spec.service in starting
                              and m.status not in RUNNING and id(m) not in queued])
            self._pump_updates()

    def _finish_job(self, job: Job, code: str = "", message: str = "") -> None:
        job.done = True
        self._sync_ports()                  # what `up` reports is routed (a no-op when it already is)
        if code:
            if code == "update-failed":
                self.data["release"] = job.release      # the new release is not what runs
                self._save()
            reply(job.client, {"ok": False, "error": {"code": code, "message": message}})
        else:
            reply(job.client, {"ok": True, "containers": [m.row() for m in self._ordered()]})
        close(job.client)

    # ---- rolling replacement (update.py keeps the books) ----------------------------------------
    def _pump_updates(self) -> None:
        """Move every replacement on as far as it can go now; safe to re-enter (a start that fails
        at once calls back here): the outer call goes round again."""
        if self._pumping:
            self._pump_again = True
            return
        self._pumping = True
        try:
            self._pump_again = True
            while self._pump_again:
                self._pump_again = False
                self._pump_once()
        finally:
            self._pumping = False

    def _pump_once(self) -> None:
        job = self.job
        now = time.monotonic()
        waiting = False
        for service, todo in self.updates.items():
            if job is None or service not in job.reached:
                continue
            for u in todo:
                for r in u.under_way():
                    if r.phase != STARTING:
                        continue
                    assert r.new is not None
                    why = failure(r.new, now, r.deadline, r.new.spec.update.monitor)
                    if why:
                        self._update_failed(u, r, why)
                        break
                    if self._probe_on_listen(r):
                        waiting = True
                    elif self._replacement_ready(r):
                        if r.old is not None and r.old in self.retiring and self._live(r.old):
                            r.phase = RETIRING
                            self._log(f"{r.new.instance}: ready; {r.old.instance} leaves")
                            self._retire(r.old)
                        else:
                            r.phase = DONE
                            self._save()              # its slot's service address is its own now
                    else:
                        waiting = True
                for r in u.due():
                    if r.removal or (r.order == "stop-first" and r.old is not None and self._live(r.old)):
                        r.phase = RETIRING if r.removal else STOPPING
                        assert r.old is not None
                        self._retire(r.old, drain=r.removal)      # stop-first: nothing to drain towards
                    else:
                        self._start_replacement(r)
                        waiting = True
        if waiting and not self._ticking:         # readiness by listening ports and monitor deadlines
            self._ticking = True

            def tick() -> None:
                self._ticking = False
                self._advance()
            self.loop.at(LISTEN_POLL, tick)

    def _start_replacement(self, r: Replacement) -> None:
        new = r.new
        assert new is not None
        r.phase = STARTING
        r.deadline = time.monotonic() + new.spec.update.monitor
        old = r.old
        if old is not None and old.container is not None and self._live(old):
            # ready once it listens where the old one did (a restart), or at all (a changed
            # configuration may move its port); a restart's healthcheck runs from that moment on
            # instead of failing on its schedule before it
            r.listens = sockets.listening(old.container.pid)
            r.same = bool(new.copy_from)
        assert self.net is not None
        self.net.allocator.allocate(new.instance)
        self._start_many([new])

    def _replacement_ready(self, r: Replacement) -> bool:
        new = r.new
        if new is None or not new.ready() or new.container is None:
            return False
        if new.spec.health or not r.listens:
            return True
        now = sockets.listening(new.container.pid)
        return r.listens <= now if r.same else bool(now)

    def _probe_on_listen(self, r: Replacement) -> bool:
        """A new instance with a healthcheck is probed the moment it listens where its predecessor
        did, not at the next tick of its probe interval: a hot reload waits for the app's start-up,
        not for the probe schedule.  True when a probe was started (the replacement is not ready)."""
        new = r.new
        if (new is None or r.probed or not r.listens or not new.spec.health or new.status != Status.STARTING
                or new.container is None or self.prober.busy(new.instance)
                or not r.listens <= sockets.listening(new.container.pid)):
            return False
        r.probed = True
        new.listening = True                    # it does: probed now, not deferred as quiet
        new.probe_token += 1                    # its result schedules the next one
        self._probe(new, new.container)
        return True

    def _update_failed(self, u: ServiceUpdate, r: Replacement, why: str) -> None:
        """A new container failed: the update stops; rollback returns each slot to its old
        configuration (old containers still running are kept), pause keeps what was replaced."""
        assert r.new is not None
        u.failed = f"new container {r.new.instance} {why}"
        self._log(f"update of {u.service}: {u.failed}; {u.failure_action}")
        undone, redo = 0, []
        for x in u.items:
            if x.removal:
                if x.phase == QUEUED:               # nothing leaves after a failure
                    assert x.old is not None
                    self._restore(x)
                    x.phase = UNDONE
                continue
            if x.phase in (QUEUED, STARTING, STOPPING):
                if x.phase == STARTING or x.phase == QUEUED:
                    self._restore(x)
                    undone += 1
                x.phase = UNDONE if x.phase != STOPPING else x.phase
            elif x.phase in (DONE, RETIRING) and u.failure_action == "rollback":
                redo.append(x)
        if u.failure_action == "rollback" and redo:
            back = ServiceUpdate(u.service, u.parallelism, "pause")
            for x in redo:
                current = self.managed.get(x.slot)
                if current is None or not self._live(current):
                    continue
                again = Managed(x.old_spec, instance=self._free_instance(x.slot), fresh=True)
                back.items.append(Replacement(x.slot, current, again, "start-first", old_spec=current.spec))
                self.managed[x.slot] = again
                self.retiring.append(current)
            self.updates[u.service].append(back)
        u.outcome = (f"rolled back ({undone + len(redo)} container(s) returned to the previous configuration)"
                     if u.failure_action == "rollback" else
                     f"paused with {u.summary()} replaced; fix it and run `envtool up` again")
        self._save()

    def _restore(self, x: Replacement) -> None:
        """The slot's old instance is its current one again; its would-be successor goes."""
        old, new = x.old, x.new
        if new is not None:
            if new.container is not None and new.status in RUNNING:
                self._stop([new])
            self._discard(new)
        if old is not None and old in self.retiring and self._live(old):
            self.retiring.remove(old)
            old.leaving = False
            self.managed[x.slot] = old
        elif new is not None and x.old_spec is not None:        # stop-first: the old one is gone; start it anew
            self.managed[x.slot] = Managed(x.old_spec, instance=self._free_instance(x.slot), fresh=True)
            self._start_many([self.managed[x.slot]])

    def _discard(self, m: Managed) -> None:
        """A stopped instance's state dir and address go (its log is the slot's and stays), and
        the slot's service address too when the slot is gone from the stack."""
        shutil.rmtree(self.store.containers_dir / m.instance, ignore_errors=True)
        if self.net:
            self.net.release(m.instance)
            if m.spec.name not in self.managed:
                self.net.allocator.release_service(m.spec.name)

    def _retire(self, m: Managed, drain: bool = True) -> None:
        """Out of the port map and its slot's service address at once (established connections
        stay), then drain: the stop signal goes once no connection to its listening ports is left
        (at most its stop_grace_period), and SIGKILL once it has ignored the signal for that long.
        Stop-first skips the drain: with no successor, a client's persistent connection (to a
        database, say) would only hold the stop up.  Nothing waits: its exit is an event."""
        m.stopped_by_user = True
        m.leaving = True
        self._save()                 # new connections (published ports, its slot's service address) go elsewhere
        c = m.container
        if c is None or m.status not in RUNNING:
            self._retired(m)
            return
        self._cancel_probe(m)
        deadline = time.monotonic() + (m.spec.stop_grace if drain else 0.0)
        address = m.address

        def drained() -> None:
            if m.container is not c or c.exit is not None or m.status not in RUNNING:
                return
            if time.monotonic() < deadline and (
                    sockets.serving(c.pid) or (address and sockets.handshakes_to(address))):
                self.loop.at(DRAIN_POLL, drained)
                return
            sig = getattr(signal.Signals, m.spec.stop_signal)
            if not m.spec.init and not launcher.heeds(c.pid, sig):
                sig = signal.SIGKILL
            self._log(f"{m.instance}: {'drained, ' if drain else ''}{sig.name}")
            try:
                signal.pidfd_send_signal(c.pidfd, sig)
            except ProcessLookupError:
                return
            if sig != signal.SIGKILL:
                self.loop.at(m.spec.stop_grace, lambda: self._kill_if_alive(m, c))
        if drain:       # a first packet routed by the old map may still be on its way: look after it lands
            self.loop.at(DRAIN_POLL, drained)
        else:
            drained()

    def _kill_if_alive(self, m: Managed, c: launcher.Container) -> None:
        if m.container is c and m.status in RUNNING:
            self._log(f"{m.instance}: ignored its stop signal for {m.spec.stop_grace:g}s: SIGKILL")
            c.cgroup.kill_all()
            try:
                signal.pidfd_send_signal(c.pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _retired(self, m: Managed) -> None:
        """A retiring instance has exited: its resources go, and its replacement moves on."""
        if m not in self.retiring:
            return
        self.retiring.remove(m)
        m.leaving = False
        for todo in self.updates.values():
            for u in todo:
                for r in u.items:
                    if r.old is m and r.phase == RETIRING:
                        r.phase = DONE
                    elif r.old is m and r.phase == STOPPING:
                        if u.failed:
                            self._restore(r)
                            r.phase = UNDONE
                        else:
                            self._start_replacement(r)       # copies m's files first, if a restart
        self._discard(m)
        self._save()

    def _members(self) -> list[Member]:
        return [Member(m.spec.service, m.status, m.exit_code, m.error,
                       m.health.last_output if m.health else "", self._will_restart(m))
                for m in self.managed.values()]

    def _will_restart(self, m: Managed) -> bool:
        return restart.should_restart(m.spec.restart, m.exit_code or 0, m.stopped_by_user)

    # ---- containers -----------------------------------------------------------------------------
    def _start_many(self, members: list[Managed]) -> None:
        """Fork every member's container first, then wait for each: their setups (and the
        kernel's cgroup moves, 5-20 ms each on cgroup v1) overlap instead of adding up."""
        if not members:
            return
        for m in members:
            m.stopped_by_user = False
            m.status = Status.CREATING
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
            if m.fresh:
                self._fresh_state_dir(m)
            netns_fd, m.address = self.net.attach(m.instance)
            fds.append(netns_fd)
            if spec.networks:               # its address joins its networks before its process runs
                self._sync_ports()
            log_fd = self.paths.open_log(spec.name)
            fds.append(log_fd)
            devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            fds.append(devnull)
            # other containers are found through the DNS server, not /etc/hosts: their addresses
            # change when they are replaced, and a hosts file written at start would go stale
            cfg = service_config(spec, self.store, fd_path(netns_fd), (),
                                 f"nameserver {self.net.gateway}\noptions ndots:0\n",
                                 self.init_path if spec.init else None, self.project, m.instance)
            return launcher.spawn(cfg, cgroups=self.cgroups, stdio=(devnull, log_fd, log_fd),
                                  seccomp_cache=str(self.store.cache_dir / "seccomp")), fds
        except EnvtoolError as e:
            for fd in fds:
                os.close(fd)
            self._start_failed(m, e)
            return None

    def _fresh_state_dir(self, m: Managed) -> None:
        """A new instance starts from an empty upper dir, or, replacing the same configuration (a
        restart, a hot reload), from a copy of its predecessor's: files written or synced into the
        container are there before its process starts, as they are for a restart in place."""
        import subprocess

        target = self.store.containers_dir / m.instance
        shutil.rmtree(target, ignore_errors=True)
        m.fresh = False
        source = self.store.containers_dir / m.copy_from / "upper" if m.copy_from else None
        if source is not None and source.is_dir():
            target.mkdir(parents=True)
            r = subprocess.run(["cp", "-a", "--reflink=auto", str(source), str(target / "upper")],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise EnvtoolError(f"cannot copy {m.copy_from}'s files for its replacement: {r.stderr.strip()}")

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
        m.adopted = False
        m.started_mono, m.started_wall = time.monotonic(), time.time()
        m.start_time = state.proc_start_time(m.container.pid)
        m.exit_code = None
        m.health = HealthState(spec.health.retries, spec.health.start_period) if spec.health else None
        self._running(m, Status.STARTING if spec.health else Status.RUNNING, first_probe=STARTING_PROBE / 2)
        self._log(f"{m.instance}: started pid {m.container.pid} at {m.address}")

    def _running(self, m: Managed, status: Status, first_probe: float) -> None:
        """From here on the container is watched the same way, started now or re-adopted."""
        c = m.container
        assert c is not None
        m.status, m.accepting = status, False
        self.loop.watch(c.pidfd, lambda fd: self._on_exit(m))
        if m.spec.health:
            m.listening, m.last_probe, m.listen_pending = status != Status.STARTING, 0.0, False
            self._schedule_probe(m, c, min(m.spec.health.interval, first_probe))
            if not m.listening:
                self.loop.at(LISTEN_POLL, lambda: self._watch_listening(m, c))
        elif _accept_port(m.spec) is not None:
            self.loop.at(ACCEPT_FAST, lambda: self._check_accepting(m, c))

    def _watch_listening(self, m: Managed, c: launcher.Container) -> None:
        """A starting container's healthcheck runs the moment its network namespace first listens
        on a socket (its /proc/PID/net/tcp read every 10 ms), not at the next tick of its schedule;
        until then the schedule runs it only every QUIET_PROBE, after the first one (at 50 ms: its
        own start-up overlaps the app's, and a fast app is up by the time it connects).  A check
        that fails because nothing listens yet costs a process in the container (CPU the app's own
        start wants) and keeps the prober busy at the moment the app comes up.  After LISTEN_WATCH
        the schedule alone runs it."""
        if m.container is not c or m.status != Status.STARTING or m.listening:
            return
        if sockets.listening(c.pid) or time.monotonic() - m.started_mono > LISTEN_WATCH:
            m.listening = True
            if self.prober.busy(m.instance):
                m.listen_pending = True                 # the next check right after this one
            else:
                self._schedule_probe(m, c, 0)
            return
        self.loop.at(LISTEN_POLL, lambda: self._watch_listening(m, c))

    def _check_accepting(self, m: Managed, c: launcher.Container) -> None:
        """A container without a healthcheck is ready once its published TCP port takes a
        connection: tried on its own bridge address every 10 ms in its first second, every 50 ms
        after that."""
        if m.container is not c or m.status not in RUNNING or m.accepting:
            return
        port = _accept_port(m.spec)
        assert port is not None
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.05)                 # on our own bridge: refused or accepted at once
            accepted = s.connect_ex((m.address, port)) == 0
        if accepted:
            m.accepting = True
            self._log(f"{m.instance}: accepting on port {port}")
            self._save()
            self._advance()
        else:
            fast = time.monotonic() - m.started_mono < 1.0
            self.loop.at(ACCEPT_FAST if fast else ACCEPT_PROBE, lambda: self._check_accepting(m, c))

    def _start_failed(self, m: Managed, e: EnvtoolError) -> None:
        m.status, m.exit_code, m.error = Status.FAILED, 127, e.message + (f" (hint: {e.hint})" if e.hint else "")
        self._write_log(m.spec.name, f"[envtool] {e}")
        self._log(f"{m.instance}: {e}")
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
        with os.fdopen(self.paths.open_log(name), "a") as f:
            f.write(text + "\n")

    def _on_exit(self, m: Managed) -> None:
        c = m.container
        assert c is not None
        self.loop.unwatch(c.pidfd)
        if m.adopted:                       # not our child: its exit status went to init
            c.exit = launcher.ExitInfo(code=1)
            info, ran = None, 0.0
        else:
            info, ran = launcher.reap(c), time.monotonic() - m.started_mono
        launcher.cleanup(c, remove_state=False)
        self._cancel_probe(m)
        m.accepting = False
        if m in self.retiring:
            m.exit_code, m.status = (info.code if info else None), Status.STOPPED
            if self.net:
                self.net.detach(m.instance)
            self._log(f"{m.instance}: stopped (replaced)")
            self._retired(m)
            self._advance()
            return
        m.exit_code = info.code if info else None
        m.oom_killed = bool(info and info.oom_killed)
        if m.oom_killed:
            self._write_log(m.spec.name, f"[envtool] {m.spec.name} was OOM-killed")
        if self.net:
            self.net.detach(m.instance)
        if self._will_restart(m) and not self.loop.stopping:
            delay = restart.backoff(m.restarts, ran)
            m.status = Status.RESTARTING
            m.restarts += 1
            self._log(f"{m.instance}: exited {m.exit_code}, restarting in {delay:.1f}s")
            self.loop.at(delay, lambda: self._restart_due(m))
        else:
            m.status = Status.EXITED
            self._log(f"{m.instance}: exited {m.exit_code}")
        self._save()
        self._advance()

    def _restart_due(self, m: Managed) -> None:
        if m.status == Status.RESTARTING and self.managed.get(m.spec.name) is m:
            self._start_many([m])

    # ---- healthchecks ---------------------------------------------------------------------------
    def _schedule_probe(self, m: Managed, c: launcher.Container, delay: float) -> None:
        """One probe schedule per container: a new one (or a probe run now) replaces the pending one."""
        m.probe_token += 1
        token = m.probe_token
        self.loop.at(delay, lambda: self._probe(m, c) if m.probe_token == token else None)

    def _probe(self, m: Managed, c: launcher.Container) -> None:
        if m.container is not c or m.status not in PROBING or self.prober.busy(m.instance):
            return
        if any(r.new is m and r.same and r.listens and not r.probed for r in self._replacements(STARTING)):
            return                                    # a restart: _probe_on_listen starts it once it listens
        if m.status == Status.STARTING and not m.listening and m.last_probe:   # nothing listens yet
            wait = m.last_probe + QUIET_PROBE - time.monotonic()
            if wait > 0:
                self._schedule_probe(m, c, wait)
                return
        m.last_probe = time.monotonic()
        spec, hc = m.spec, m.spec.health
        assert hc is not None
        self.prober.start(m.instance, enter_spec(spec, c.pid, hc.command, c.cgroup.procs_files(),
                                                _bpf(self.store, spec.capabilities)), hc.timeout)

    def _on_probe(self, instance: str, ok: bool, output: str) -> None:
        m = self._by_instance(instance)
        if m is not None:
            self._health_result(m, ok, output)

    def _cancel_probe(self, m: Managed) -> None:
        self.prober.cancel(m.instance)

    def _health_result(self, m: Managed, ok: bool, output: str) -> None:
        if m.health is None or m.status not in PROBING:
            return
        before = m.health.status
        m.status = Status(m.health.record(ok, time.monotonic() - m.started_mono, output))
        if m.status != before:
            self._log(f"{m.instance}: {m.status}")
            self._save(ports=False)
            self._advance()                 # dependants start before the ports' nft transaction
            self._sync_ports()
        else:
            self._advance()
        hc = m.spec.health
        assert hc is not None
        # while starting, probe often (Compose's start_interval) so dependants wait as little as possible
        interval = hc.interval if m.status != Status.STARTING else min(hc.interval, STARTING_PROBE)
        if m.status == Status.STARTING and m.listen_pending:
            interval, m.listen_pending = 0.0, False
        c = m.container
        if c is not None:
            self._schedule_probe(m, c, interval)

    # ---- stop / down ----------------------------------------------------------------------------
    def _stop(self, members: list[Managed]) -> None:
        """Stop signal to all, wait up to the longest grace period, SIGKILL what remains."""
        live = [(m, m.container) for m in members if m.container is not None and m.status in RUNNING]
        for m in members:
            m.stopped_by_user = True
            m.leaving = True
            if m.status == Status.RESTARTING:
                m.status = Status.STOPPED
        self._sync_ports()              # no new connection reaches what is about to stop
        graceful = []
        for m, c in live:
            self._cancel_probe(m)
            sig = getattr(signal.Signals, m.spec.stop_signal)
            if not m.spec.init and not launcher.heeds(c.pid, sig):   # its PID 1 would never see it
                sig = signal.SIGKILL
            else:
                graceful.append((m, c))
            try:
                signal.pidfd_send_signal(c.pidfd, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + max((m.spec.stop_grace for m, _ in graceful), default=0)
        pending = {c.pidfd: c for _, c in live}
        while pending and time.monotonic() < deadline:
            ready = readable(pending, deadline - time.monotonic())
            for fd in ready:
                pending.pop(fd, None)
        for c in pending.values():
            c.cgroup.kill_all()
            try:
                signal.pidfd_send_signal(c.pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for m, c in live:
            self.loop.unwatch(c.pidfd)
            info = launcher.reap(c) if not m.adopted else None
            launcher.cleanup(c, remove_state=False)
            if self.net:
                self.net.detach(m.instance)
            m.exit_code = info.code if info else None
            m.status, m.accepting = Status.STOPPED, False
        for m in members:
            m.leaving = False
        self._save()

    def _remove_container(self, name: str) -> None:
        m = self.managed.pop(name, None)
        if m is None:
            return
        self._stop([m])
        self._discard(m)
        self._save()

    def _control(self, op: str, services: list[str], conn: socket.socket) -> None:
        targets = [m for m in self._ordered() if not services or m.spec.service in services]
        if not targets:
            from envtool.errors import UsageError

            raise UsageError(f"no such service: {', '.join(services)}",
                             hint="envtool ps lists the services of the running stack")
        if op == "restart":
            self._restart(targets, conn)
            return
        if op == "stop":
            self._stop(targets)
        if op == "start":
            self._start_many([m for m in targets if m.status not in RUNNING])
        reply(conn, {"ok": True, "containers": [m.row() for m in self._ordered()]})
        close(conn)

    def _restart(self, targets: list[Managed], conn: socket.socket) -> None:
        """Each running target is replaced by a new instance of the same configuration (with its
        files), in its service's update order; stopped ones are started.  Answered when done."""
        if self.job and not self.job.done:
            reply(conn, {"ok": False, "error": {"code": "busy", "message": "an up or restart is in progress"}})
            close(conn)
            return
        self._log(f"restart: {', '.join(sorted({m.spec.service for m in targets}))}")
        self.updates = {}
        for m in targets:
            if self._live(m):
                self._replacement(m.spec.name, m, Managed(m.spec, instance=self._free_instance(m.spec.name),
                                                          fresh=True), restart_of=True)
        services = sorted({m.spec.service for m in targets})
        self.job = Job(conn, [services], {}, release=self.data.get("release"))
        self._save()
        self._advance()

    def _down(self, remove_volumes: bool, conn: socket.socket | None = None) -> None:
        groups: list[list[Managed]] = [list(self.retiring)]
        seen: set[str] = set()
        if self.stack:                       # dependents first, each level stopped in parallel
            for level in reversed(levels(self.stack.dependencies())):
                group = [m for m in self._ordered() if m.spec.service in level]
                seen.update(m.spec.name for m in group)
                groups.append(group)
        groups.insert(1, [m for m in self._ordered() if m.spec.name not in seen])
        for group in groups:
            self._stop(group)
        for m in self._all():
            shutil.rmtree(self.store.containers_dir / m.instance, ignore_errors=True)
            send(conn, {"event": "removed", "name": m.spec.name})
        self.managed.clear()
        self.retiring.clear()
        self.updates = {}
        if self.dns:
            for s in self.dns.fileno_list():
                self.loop.unwatch(s)
            self.dns.close()
            self.dns = None
        if self.net is None and self.data.get("bridge"):
            self.net = ProjectNetwork.choose(self.host_key, None, self.data["subnet"], [], new_netns)
        if self.net:
            self.net.down()
            self.net = None
        if rootless.active():
            rootless.publish(self.host_key, [])
        if remove_volumes:
            for v in (self.stack.volumes if self.stack else self.data.get("volumes", [])):
                shutil.rmtree(self.store.root / "volumes" / f"{self.project}_{v}", ignore_errors=True)
        shutil.rmtree(self.paths.logs, ignore_errors=True)
        for p in (self.paths.state, self.paths.socket, self.paths.lock, self.paths.supervisor_log):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
        reply(conn, {"ok": True})
        close(conn)
        self.loop.stop()

    # ---- re-adoption ----------------------------------------------------------------------------
    def _adopt(self) -> None:
        """Take over what an earlier supervisor left running (it was killed, say): every container
        state.json records, watched from here on as if started here; the network and DNS taken
        up again as recorded.  Instances it was replacing are retired: their successors run."""
        recorded = state.records(self.data)
        old = state.retiring(self.data)
        if not recorded and not old:
            return
        self.data["volumes"] = self.data.get("volumes", [])
        for name, rec in recorded.items():
            m = self._adopt_one(rec)
            self.managed[name] = m
        leaving = [self._adopt_one(rec) for rec in old.values()]
        self.retiring.extend(leaving)
        if self.data.get("subnet"):
            self._network_up()
        self._save()
        for m in leaving:
            self._retire(m)

    def _adopt_one(self, rec: ContainerRecord) -> Managed:
        spec = container_from_json(rec.spec)
        m = Managed(spec, address=rec.address, restarts=rec.restarts, started_wall=rec.started_wall,
                    status=Status.EXITED, instance=rec.runtime_id)
        pidfd = _pidfd(rec.pid) if state.alive(rec.pid, rec.start_time) else -1
        if pidfd < 0:
            try:
                self._cgroup(m.instance).remove()
            except EnvtoolError:
                pass
            return m
        assert rec.pid is not None
        cfg = service_config(spec, self.store, "host", (), "", None, self.project, m.instance)
        m.container = launcher.Container(cfg, rec.pid, self._cgroup(m.instance), pidfd)
        m.adopted, m.start_time, m.started_mono = True, rec.start_time, time.monotonic()
        m.health = HealthState(spec.health.retries, 0) if spec.health else None
        status = rec.status if spec.health and rec.status in PROBING else (
            Status.STARTING if spec.health else Status.RUNNING)
        self._running(m, status, first_probe=0.1)
        m.accepting = True                  # it was serving: no gap in its published ports
        self._log(f"{m.instance}: adopted pid {rec.pid}")
        return m

    def _cgroup(self, name: str) -> Any:
        return self.cgroups.open(f"{state.cgroup_parent(self.store.root, self.project)}/{name}")


def _pidfd(pid: int | None) -> int:
    try:
        return os.pidfd_open(pid) if pid else -1
    except OSError:
        return -1


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
