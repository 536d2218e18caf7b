"""The network of a build step: a namespace of its own that reaches the outside (the package index,
a Debian mirror) through NAT, and nothing of the host's — BuildKit's default.

A step gets a bridge with one veth, an address from the stacks' pool, and an nftables table that
masquerades its egress and drops whatever it sends to the host itself (loopback services, the
host's other addresses) or to any envtool bridge.  Everything goes away when the step ends.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from envtool._util.names import interface_name
from envtool.errors import HostError
from envtool.network import ipam, nft
from envtool.network.netlink import Netlink
from envtool.runtime.namespaces import fd_path, new_netns


@dataclass(frozen=True)
class StepNetwork:
    netns: str            # a path the step's container joins (/proc/<pid>/fd/N)
    resolv_conf: str


@contextmanager
def step_network() -> Iterator[StepNetwork]:
    key = f"build-{secrets.token_hex(4)}"
    bridge, veth = interface_name("et", key), interface_name("etv", key)
    host = Netlink()
    fd = -1
    made_table = False
    try:
        subnet = ipam.choose_subnet(host.host_networks())   # every envtool bridge's address is in there
        alloc = ipam.Allocator(subnet)
        address = alloc.allocate("step")
        host.ensure_bridge(bridge, alloc.gateway, subnet.prefixlen)
        _sysctl("/proc/sys/net/ipv4/ip_forward", "1")
        made_table = True
        nft.apply(key, bridge, str(subnet), [], isolate_host=True)
        fd, inner = new_netns(Netlink)
        try:
            host.add_veth(veth, bridge, fd, address)
            inner.configure_inside("eth0", address, subnet.prefixlen, alloc.gateway)
        finally:
            inner.close()
        yield StepNetwork(fd_path(fd), upstream_resolv_conf())
    finally:
        for link in (veth, bridge):        # the veth may already be gone with its namespace
            try:
                host.delete_link(link)
            except HostError:
                pass
        if fd >= 0:
            os.close(fd)
        if made_table:
            nft.remove(key, bridge)
        host.close()


def _sysctl(path: str, value: str) -> None:
    with open(path) as f:
        if f.read().strip() == value:
            return
    with open(path, "w") as f:
        f.write(value)


def upstream_resolv_conf(path: str = "/etc/resolv.conf") -> str:
    """The host's resolv.conf, unless its name servers are on loopback (systemd-resolved's
    127.0.0.53, a local dnsmasq), which a step cannot reach: then the upstream list systemd-resolved
    keeps, as Docker does."""
    text = _read(path)
    servers = [line.split()[1] for line in text.splitlines() if line.startswith("nameserver") and len(line.split()) > 1]
    if servers and all(s.startswith("127.") or s == "::1" for s in servers):
        upstream = _read("/run/systemd/resolve/resolv.conf")
        if upstream:
            return upstream
    return text


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""
