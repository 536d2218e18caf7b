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

from envtool._util.record import dataclass
from envtool.network.project import ProjectNetwork, subnet_lock
from envtool.runtime.namespaces import fd_path, new_netns


@dataclass(frozen=True)
class StepNetwork:
    netns: str            # a path the step's container joins (/proc/<pid>/fd/N)
    resolv_conf: str


@contextmanager
def step_network() -> Iterator[StepNetwork]:
    """A stack's project network, made for one step: bridge, one veth, an nftables table with
    `isolate_host` (masquerade out; input from the bridge dropped; other envtool bridges dropped)."""
    key = f"build-{secrets.token_hex(4)}"
    fd = -1
    with subnet_lock():                   # steps of images built side by side choose one at a time
        net = ProjectNetwork.choose(key, None, None, [], new_netns, isolate_host=True)
        try:
            net.up()
        except BaseException:
            net.down()
            raise
    try:
        fd, _ = net.attach("step")
        yield StepNetwork(fd_path(fd), upstream_resolv_conf())
    finally:
        net.detach("step")                # tolerates a veth already gone with its namespace
        if fd >= 0:
            os.close(fd)
        net.down()


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
