"""A project's network: the bridge, one veth per container, published ports, egress NAT.

It works through doors it is handed, so its logic runs without root in tests:
- `host`: a netlink socket in the host's namespace (network/netlink.py's Netlink, or the
  RecordingNetlink double beside it);
- `new_netns`: makes a network namespace and runs a function in it (runtime/namespaces.py's
  new_netns: network/ may not import runtime/, the stack passes it in);
- `firewall`: applies and removes the project's nftables table (network/nft.py);
- `sysctl`: writes a /proc/sys setting.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from envtool._util.names import interface_name
from envtool._util.record import dataclass, field
from envtool.errors import HostError, InputError
from envtool.network import ipam, nft
from envtool.network.netlink import Netlink

NewNetns = Callable[[Callable[[], Any]], tuple[int, Any]]
LOCK_DIR = "/run/envtool"              # root's; a rootless session locks in its XDG_RUNTIME_DIR


def _subnet_lock_fd() -> int | None:
    """The lock file of this network namespace, in a directory only this user writes (root:
    /run/envtool; rootless: XDG_RUNTIME_DIR); a file someone else owns is never used (it could be
    held forever), a symlink never followed."""
    ns = os.stat("/proc/self/ns/net").st_ino
    for d in (LOCK_DIR, os.environ.get("XDG_RUNTIME_DIR") or ""):
        if not d:
            continue
        try:
            if d == LOCK_DIR:
                os.makedirs(d, mode=0o700, exist_ok=True)
            if os.lstat(d).st_uid != os.geteuid():
                continue
            fd = os.open(os.path.join(d, f"subnets-{ns}.lock"),
                         os.O_CREAT | os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError:
            continue
        if os.fstat(fd).st_uid == os.geteuid():
            return fd
        os.close(fd)
    return None


@contextmanager
def subnet_lock() -> Iterator[None]:
    """Choosing a free subnet and creating its bridge is one step for every envtool process of this
    network namespace (build steps side by side, two `up`s at once)."""
    import fcntl

    fd = _subnet_lock_fd()
    if fd is None:                        # nowhere to lock: as before, two choosers may race
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class Firewall(Protocol):
    def apply(self, project: str, bridge: str, subnet: str, ports: list[nft.PortRule],
              isolate_host: bool = False, services: dict[str, str | None] | None = None,
              service_net: str | None = None, networks: dict[str, list[str]] | None = None,
              link: str | None = None) -> None: ...
    def remove(self, project: str, bridge: str) -> None: ...


class _Nftables:
    apply = staticmethod(nft.apply)
    remove = staticmethod(nft.remove)


class PortInUse(InputError):
    code = "port-in-use"


def bridge_name(project: str) -> str:
    return interface_name("et", project)


def veth_name(project: str, container: str) -> str:
    return interface_name("etv", project, container)


def write_sysctl(path: str, value: str) -> None:
    try:
        with open(path) as f:
            if f.read().strip() == value:
                return
        with open(path, "w") as f:
            f.write(value)
    except OSError as e:
        raise HostError(f"cannot set {path} = {value}: {e.strerror}") from None


@dataclass
class ProjectNetwork:
    key: str                    # state.host_key(): the project, plus its root's hash outside the default
    subnet: ipaddress.IPv4Network
    new_netns: NewNetns
    leases: dict[str, str] = field(default_factory=dict)
    host: Any = None            # Netlink, or RecordingNetlink in tests
    firewall: Firewall = field(default_factory=_Nftables)
    sysctl: Callable[[str, str], None] = write_sysctl
    isolate_host: bool = False  # a build step's network: nothing of the host's is reachable
    reserved: dict[tuple[str, int, str], socket.socket] = field(default_factory=dict)  # (ip, port, proto)

    @property
    def bridge(self) -> str:
        return bridge_name(self.key)

    @property
    def allocator(self) -> ipam.Allocator:
        return ipam.Allocator(self.subnet, self.leases)

    @property
    def gateway(self) -> str:
        return self.allocator.gateway

    @classmethod
    def choose(cls, key: str, pinned: str | None, recorded: str | None, others: list[str], new_netns: NewNetns,
               host: Any = None, **kw: Any) -> ProjectNetwork:
        host = host if host is not None else Netlink()
        if recorded:
            subnet = ipaddress.IPv4Network(recorded)
        else:
            used = [n for n in host.host_networks()] + others
            subnet = ipam.choose_subnet(used, pinned=pinned)
        return cls(key, subnet, new_netns, host=host, **kw)

    def up(self) -> None:
        """The bridge, forwarding on and (for a stack) route_localnet so the host's own
        127.0.0.1:PORT reaches a container; the firewall's input chain drops what a container
        sends to 127.0.0.0/8 itself (CVE-2020-8558).  The table is applied with no ports yet."""
        assert self.host is not None
        self.host.ensure_bridge(self.bridge, self.gateway, self.subnet.prefixlen)
        self.sysctl("/proc/sys/net/ipv4/ip_forward", "1")
        if not self.isolate_host:
            self.sysctl(f"/proc/sys/net/ipv4/conf/{self.bridge}/route_localnet", "1")
        else:
            self.apply_ports([])

    def apply_ports(self, ports: list[nft.PortRule], services: dict[str, str | None] | None = None,
                    networks: dict[str, list[str]] | None = None) -> None:
        """Published ports, each replica slot's service address → the container serving it
        (None: nothing does; refused), and, when the project declares networks, which containers
        may reach each other."""
        self.firewall.apply(self.key, self.bridge, str(self.subnet), ports, isolate_host=self.isolate_host,
                            services=services or {}, service_net=str(self.allocator.services),
                            networks=networks, link=str(self.allocator.link))

    def attach(self, container: str) -> tuple[int, str]:
        """A new netns with eth0 on the bridge; returns (netns fd, address).  Its link is the lower
        half of the subnet: service addresses (the upper half) are reached through the gateway,
        which DNATs them to the container serving the slot."""
        assert self.host is not None
        address = self.allocator.allocate(container)
        fd, inner = self.new_netns(type(self.host))
        try:
            self.host.add_veth(veth_name(self.key, container), self.bridge, fd, address)
            inner.configure_inside("eth0", address, self.allocator.link.prefixlen, self.gateway)
        except BaseException:
            os.close(fd)
            raise
        finally:
            inner.close()
        return fd, address

    def release(self, container: str) -> None:
        self.allocator.release(container)

    def detach(self, container: str) -> None:
        """Delete the host side of a stopped container's veth now (which takes the peer with it),
        rather than leave it to the kernel's asynchronous teardown of the netns: a restart reuses
        the name at once."""
        if self.host is not None:
            try:
                self.host.delete_link(veth_name(self.key, container))
            except HostError:
                pass                          # already gone with its netns

    def reserve_ports(self, ports: list[nft.PortRule]) -> None:
        """Bind every published port on the host so nothing else takes it while the stack runs;
        a port already taken is reported with the process that holds it.  A TCP port is also put
        in listening state: Linux lets a second SO_REUSEADDR socket bind a port whose holder is not
        listening (another stack, nginx), but never one that is.  No connection reaches the socket:
        DNAT sends the port's traffic to the container before the host's socket lookup.
        Ports reserved already stay as they are: a forked child may hold a copy of the socket for
        a moment, and a copy would keep the port from being bound again."""
        wanted = {(p.host_ip or "0.0.0.0", p.host_port, p.protocol) for p in ports}
        for key in [k for k in self.reserved if k not in wanted]:
            self.reserved.pop(key).close()
        added: list[tuple[str, int, str]] = []
        try:
            for key in sorted(wanted - set(self.reserved)):
                self.reserved[key] = _bind_port(*key)
                added.append(key)
        except BaseException:
            for key in added:                  # what ran before keeps its ports
                self.reserved.pop(key).close()
            raise

    def release_ports(self) -> None:
        for s in self.reserved.values():
            s.close()
        self.reserved = {}

    def down(self) -> None:
        self.release_ports()
        self.firewall.remove(self.key, self.bridge)
        if self.host is not None:
            self.host.delete_link(self.bridge)
            self.host.close()
            self.host = None


def _bind_port(ip: str, port: int, protocol: str, patience: float = 1.0) -> socket.socket:
    """A socket holding the port.  EADDRINUSE is retried for `patience` seconds: after a supervisor
    was killed, a child it forked can hold its copy of the old reservation for a moment."""
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    deadline = time.monotonic() + patience
    while True:
        s = socket.socket(socket.AF_INET, kind)
        if kind == socket.SOCK_STREAM:           # TIME_WAIT is not "in use"; for UDP it would let a
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # second SO_REUSEADDR socket in
        try:
            s.bind((ip, port))
            if kind == socket.SOCK_STREAM:
                s.listen(1)
            return s
        except OSError as e:
            s.close()
            if e.errno == errno.EADDRINUSE and time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            if e.errno == errno.EADDRINUSE:
                holder = port_holder(port, protocol)
                raise PortInUse(f"host port {port}/{protocol} is already in use"
                                + (f" by {holder}" if holder else ""),
                                hint="stop that process or publish another port") from None
            raise HostError(f"cannot bind host port {port}: {e.strerror}") from None


def port_holder(port: int, protocol: str) -> str | None:
    """'pid 123 (nginx)' for the process listening on the port, from /proc/net and /proc/*/fd."""
    inodes = set()
    for table in (f"/proc/net/{protocol}", f"/proc/net/{protocol}6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if int(parts[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(parts[9])
        except (OSError, StopIteration, IndexError, ValueError):
            continue
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    with open(f"/proc/{pid}/comm") as f:
                        return f"pid {pid} ({f.read().strip()})"
        except OSError:
            continue
    return None
