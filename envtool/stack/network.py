"""A project's network, assembled from network/ (IPAM, netlink, nftables, DNS) and the runtime's
namespace helper: the bridge, one veth per container, published ports, egress NAT."""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from dataclasses import dataclass, field

from envtool._util.names import interface_name
from envtool.errors import HostError, InputError
from envtool.network import ipam, nft
from envtool.network.netlink import Netlink
from envtool.runtime.namespaces import new_netns


class PortInUse(InputError):
    code = "port-in-use"


def bridge_name(project: str) -> str:
    return interface_name("et", project)


def veth_name(project: str, container: str) -> str:
    return interface_name("etv", project, container)


def _sysctl(path: str, value: str) -> None:
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
    project: str
    subnet: ipaddress.IPv4Network
    leases: dict[str, str] = field(default_factory=dict)
    host: Netlink | None = None
    reserved: list[socket.socket] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return bridge_name(self.project)

    @property
    def allocator(self) -> ipam.Allocator:
        return ipam.Allocator(self.subnet, self.leases)

    @property
    def gateway(self) -> str:
        return self.allocator.gateway

    @classmethod
    def choose(cls, project: str, pinned: str | None, recorded: str | None, others: list[str]) -> ProjectNetwork:
        host = Netlink()
        if recorded:
            subnet = ipaddress.IPv4Network(recorded)
        else:
            used = [n for n in host.host_networks()] + others
            subnet = ipam.choose_subnet(used, pinned=pinned)
        return cls(project, subnet, host=host)

    def up(self) -> None:
        assert self.host is not None
        self.host.ensure_bridge(self.bridge, self.gateway, self.subnet.prefixlen)
        _sysctl("/proc/sys/net/ipv4/ip_forward", "1")
        _sysctl(f"/proc/sys/net/ipv4/conf/{self.bridge}/route_localnet", "1")

    def apply_ports(self, ports: list[nft.PortRule]) -> None:
        nft.apply(self.project, self.bridge, str(self.subnet), ports)

    def attach(self, container: str) -> tuple[int, str]:
        """A new netns with eth0 on the bridge; returns (netns fd, address)."""
        assert self.host is not None
        address = self.allocator.allocate(container)
        fd, inner = new_netns(Netlink)
        try:
            self.host.add_veth(veth_name(self.project, container), self.bridge, fd, address)
            inner.configure_inside("eth0", address, self.subnet.prefixlen, self.gateway)
        except BaseException:
            os.close(fd)
            raise
        finally:
            inner.close()
        return fd, address

    def release(self, container: str) -> None:
        self.allocator.release(container)

    def reserve_ports(self, ports: list[nft.PortRule]) -> None:
        """Bind every published port on the host so nothing else takes it while the stack runs;
        a port already taken is reported with the process that holds it."""
        self.release_ports()
        for p in ports:
            kind = socket.SOCK_STREAM if p.protocol == "tcp" else socket.SOCK_DGRAM
            s = socket.socket(socket.AF_INET, kind)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # TIME_WAIT is not "in use"
            try:
                s.bind((p.host_ip or "0.0.0.0", p.host_port))
            except OSError as e:
                s.close()
                self.release_ports()
                if e.errno == errno.EADDRINUSE:
                    holder = port_holder(p.host_port, p.protocol)
                    raise PortInUse(f"host port {p.host_port}/{p.protocol} is already in use"
                                    + (f" by {holder}" if holder else ""),
                                    hint="stop that process or publish another port") from None
                raise HostError(f"cannot bind host port {p.host_port}: {e.strerror}") from None
            self.reserved.append(s)

    def release_ports(self) -> None:
        for s in self.reserved:
            s.close()
        self.reserved = []

    def down(self) -> None:
        self.release_ports()
        nft.remove(self.project, self.bridge)
        if self.host is not None:
            self.host.delete_link(self.bridge)
            self.host.close()
            self.host = None


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
