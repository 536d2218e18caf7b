"""Subnet choice and address allocation (pure).

Each project gets one /24 from the pool, avoiding every network already routed on the host and
every subnet other envtool projects hold.  In a subnet, .1 is the bridge (gateway and DNS);
containers get the lowest free address of the lower half from .2 up (on their eth0, the lower half
is the link), and every replica slot a service address from the upper half (.129 …): what its name
resolves to, DNATed by the host to whichever container serves the slot now.  Reservations survive
restarts.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from envtool._util.record import dataclass, field
from envtool.errors import InputError

DEFAULT_POOL = "10.89.0.0/16"
PREFIX = 24


class IpamError(InputError):
    code = "network-exhausted"


def choose_subnet(used: Iterable[str], pool: str = DEFAULT_POOL, prefix: int = PREFIX,
                  pinned: str | None = None) -> ipaddress.IPv4Network:
    taken = [ipaddress.ip_network(u, strict=False) for u in used]
    taken = [t for t in taken if isinstance(t, ipaddress.IPv4Network)]
    if pinned:
        try:
            net = ipaddress.IPv4Network(pinned, strict=True)
        except ValueError as e:
            raise IpamError(f"invalid subnet {pinned!r}: {e}") from None
        if net.num_addresses < 16:
            raise IpamError(f"subnet {pinned} is too small: it needs room for a gateway, containers and their "
                            "service addresses (a /28 at least)")
        clash = next((t for t in taken if t.overlaps(net)), None)
        if clash:
            raise IpamError(f"subnet {pinned} overlaps {clash}, already in use on this host",
                            hint="pick another [project] subnet, or remove it to let envtool choose")
        return net
    for net in ipaddress.IPv4Network(pool).subnets(new_prefix=prefix):
        if not any(t.overlaps(net) for t in taken):
            return net
    raise IpamError(f"no free /{prefix} left in {pool}", hint="remove stopped projects (envtool down)")


@dataclass
class Allocator:
    subnet: ipaddress.IPv4Network
    leases: dict[str, str] = field(default_factory=dict)       # container name -> address

    @property
    def gateway(self) -> str:
        return str(self.subnet.network_address + 1)

    @property
    def link(self) -> ipaddress.IPv4Network:
        """The lower half: the gateway and the containers, on-link for the containers."""
        return next(self.subnet.subnets(prefixlen_diff=1))

    @property
    def services(self) -> ipaddress.IPv4Network:
        """The upper half: replica slots' service addresses, reached through the gateway."""
        return list(self.subnet.subnets(prefixlen_diff=1))[1]

    def allocate(self, name: str) -> str:
        """A container's address (lower half)."""
        return self._take(name, self.link)

    def allocate_service(self, slot: str) -> str:
        """A replica slot's service address (upper half)."""
        return self._take(SERVICE + slot, self.services)

    def _take(self, key: str, net: ipaddress.IPv4Network) -> str:
        if key in self.leases:
            return self.leases[key]
        used = set(self.leases.values()) | {self.gateway}
        for host in net.hosts():
            addr = str(host)
            if addr not in used:
                self.leases[key] = addr
                return addr
        raise IpamError(f"subnet {self.subnet} is full ({net} holds {net.num_addresses - 2} addresses)")

    def service_address(self, slot: str) -> str | None:
        return self.leases.get(SERVICE + slot)

    def release(self, name: str) -> None:
        self.leases.pop(name, None)

    def release_service(self, slot: str) -> None:
        self.leases.pop(SERVICE + slot, None)


SERVICE = "service:"          # lease key prefix of a replica slot's service address
