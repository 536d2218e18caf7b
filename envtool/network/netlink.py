"""The only pyroute2 importer (lazily, and only its IPRoute: see iproute_class).  NetlinkError and
OSError become HostError/SyscallError here."""

from __future__ import annotations

import errno
import ipaddress
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from envtool.errors import HostError


def _iproute() -> Any:
    return iproute_class()()


def iproute_class() -> Any:
    """pyroute2's IPRoute, imported without pyroute2's package __init__, which imports every module
    of the library (IPDB, NDB, conntrack, IPVS, nl80211, plan9 ...): 230 → 157 ms here, most of what
    remains is asyncio.  The package object goes into sys.modules unexecuted, with a module
    __getattr__ (PEP 562) that runs its __init__ the first time anything asks it for a name, so
    `from pyroute2 import X` elsewhere in the process still works.  This import is on the critical
    path of every `up`: the supervisor does it before it can set up the network."""
    import sys

    try:
        if "pyroute2" not in sys.modules:
            _lean_package("pyroute2")
        from pyroute2.iproute.linux import IPRoute
    except ImportError as e:  # pragma: no cover - a dependency
        raise HostError(f"pyroute2 is not importable: {e}", hint="pip install pyroute2") from None
    return IPRoute


def _lean_package(name: str) -> None:
    import importlib
    import importlib.util
    import sys

    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return
    pkg = importlib.util.module_from_spec(spec)
    state = {"whole": False}

    def whole(attr: str) -> Any:
        if state["whole"] or attr.startswith("__"):
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")
        if importlib.util.find_spec(f"{name}.{attr}") is not None:    # `from pyroute2 import config`
            return importlib.import_module(f"{name}.{attr}")
        state["whole"] = True
        spec.loader.exec_module(pkg)               # type: ignore[union-attr]  # the real __init__
        return getattr(pkg, attr)

    pkg.__getattr__ = whole                         # type: ignore[method-assign]
    sys.modules[name] = pkg


def warm() -> None:
    """Import pyroute2 ahead of need (the supervisor does it while the CLI is still building)."""
    try:
        iproute_class()
    except HostError:
        pass


@contextmanager
def _translate(what: str) -> Iterator[None]:
    try:
        yield
    except HostError:
        raise                            # ours, already saying what failed
    except Exception as e:  # noqa: BLE001 - NetlinkError and socket errors from pyroute2
        code = getattr(e, "code", None)
        raise HostError(f"{what}: {e}" + (f" (netlink error {code})" if code else "")) from None


# A container's netns, and with it the old veth pair of a restarted container, is destroyed by the
# kernel after the container's last process exits, in a work queue: for a moment the old pair can
# still hold the name, or vanish between our lookup and our use of it.
RACING = {errno.EEXIST, errno.ENODEV, errno.EINVAL, errno.EBUSY}
VETH_PATIENCE = 2.0
LOOPBACK_INDEX = 1          # lo is the first device of every network namespace (LOOPBACK_IFINDEX)


def mac_for(address: str) -> str:
    """02:42:<the four address bytes>: locally administered, unicast, stable for the address."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(address).packed)


class Netlink:
    """A netlink socket bound to the network namespace it was opened in."""

    def __init__(self) -> None:
        self.ipr = _iproute()

    def close(self) -> None:
        self.ipr.close()

    def index(self, name: str) -> int | None:
        found = self.ipr.link_lookup(ifname=name)
        return found[0] if found else None

    def ensure_bridge(self, name: str, gateway: str, prefix: int) -> None:
        with _translate(f"create bridge {name}"):
            if self.index(name) is None:
                self.ipr.link("add", ifname=name, kind="bridge")
            idx = self.index(name)
            have = {a.get_attr("IFA_ADDRESS") for a in self.ipr.get_addr(index=idx, family=2)}
            if gateway not in have:
                self.ipr.addr("add", index=idx, address=gateway, prefixlen=prefix)
            # a MAC of its own: a bridge left to itself takes the lowest MAC of its ports and changes
            # it when that port leaves, and the containers' ARP entry for their gateway then points
            # nowhere (replies lost until it is probed again, seconds)
            self.ipr.link("set", index=idx, address=mac_for(gateway), state="up")

    def delete_link(self, name: str) -> bool:
        with _translate(f"delete link {name}"):
            idx = self.index(name)
            if idx is None:
                return False
            self.ipr.link("del", index=idx)
            return True

    def add_veth(self, host_if: str, bridge: str, netns_fd: int, address: str, peer: str = "eth0") -> None:
        """veth pair with the peer created directly in the container's netns, and the host side
        enslaved to the bridge and up, in one request (two more and three lookups before: ~2.5 ms
        of each container's start).  The peer's MAC is derived from its IPv4 address (as Docker
        does), so a restarted container keeps it and its neighbours' ARP caches stay right.  A pair
        of the same name left by the container's previous instance is deleted when the request
        finds it, and the request sent again."""
        deadline = time.monotonic() + VETH_PATIENCE
        with _translate(f"create veth {host_if}"):
            master = self.index(bridge)
            if master is None:
                raise HostError(f"create veth {host_if}: no bridge {bridge}")
            while True:
                try:
                    self.ipr.link("add", ifname=host_if, kind="veth", master=master, state="up",
                                  peer={"ifname": peer, "net_ns_fd": netns_fd, "address": mac_for(address)})
                    return
                except Exception as e:  # noqa: BLE001 - NetlinkError: retried while the old pair is torn down
                    if getattr(e, "code", None) not in RACING or time.monotonic() > deadline:
                        raise
                    idx = self.index(host_if)
                    if idx is not None:
                        try:
                            self.ipr.link("del", index=idx)
                        except Exception as gone:  # noqa: BLE001 - went with its netns meanwhile
                            if getattr(gone, "code", None) not in RACING:
                                raise
                    else:
                        time.sleep(0.01)

    def configure_inside(self, ifname: str, address: str, prefix: int, gateway: str) -> None:
        """Run in the container's netns: address, up, lo up, default route via the bridge."""
        with _translate(f"configure {ifname} {address}/{prefix}"):
            idx = self.index(ifname)
            self.ipr.addr("add", index=idx, address=address, prefixlen=prefix)
            self.ipr.link("set", index=idx, state="up")
            self.ipr.link("set", index=LOOPBACK_INDEX, state="up")
            self.ipr.route("add", dst="default", gateway=gateway)

    def links(self, prefix: str) -> list[str]:
        return sorted(n for n in (link.get_attr("IFLA_IFNAME") for link in self.ipr.get_links())
                      if n and n.startswith(prefix))

    def host_networks(self) -> list[str]:
        """Every IPv4 network routed or addressed on this host (for IPAM to avoid)."""
        nets = set()
        for a in self.ipr.get_addr(family=2):
            nets.add(str(ipaddress.ip_interface(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}").network))
        for r in self.ipr.get_routes(family=2):
            dst = r.get_attr("RTA_DST")
            if dst and r["dst_len"] > 0:
                nets.add(f"{dst}/{r['dst_len']}")
        return sorted(nets)


class RecordingNetlink:
    """The test double (as runtime/syscalls.py has RecordingSyscalls): records each request, keeps
    the links it was asked to make, and fails a request on demand (fail_at: "op" or "op:name")."""

    def __init__(self, networks: list[str] | None = None, fail_at: dict[str, int] | None = None) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.links: dict[str, dict[str, Any]] = {"lo": {}}
        self.networks = list(networks or [])
        self.fail_at = dict(fail_at or {})

    def _record(self, op: str, *args: Any) -> None:
        for key in (f"{op}:{args[0] if args else ''}", op):
            if key in self.fail_at:
                code = self.fail_at.pop(key)
                raise HostError(f"{op} {args[0] if args else ''}: ({code}, {errno.errorcode.get(code, code)})")
        self.calls.append((op, args))

    def ops(self, name: str) -> list[tuple[Any, ...]]:
        return [args for op, args in self.calls if op == name]

    def close(self) -> None:
        self._record("close")

    def index(self, name: str) -> int | None:
        return list(self.links).index(name) + 1 if name in self.links else None

    def ensure_bridge(self, name: str, gateway: str, prefix: int) -> None:
        self._record("ensure_bridge", name, gateway, prefix)
        self.links[name] = {"kind": "bridge", "address": f"{gateway}/{prefix}"}

    def delete_link(self, name: str) -> bool:
        self._record("delete_link", name)
        return self.links.pop(name, None) is not None

    def add_veth(self, host_if: str, bridge: str, netns_fd: int, address: str, peer: str = "eth0") -> None:
        self._record("add_veth", host_if, bridge, netns_fd, address, peer)
        if bridge not in self.links:
            raise HostError(f"create veth {host_if}: no bridge {bridge}")
        self.links[host_if] = {"kind": "veth", "master": bridge, "mac": mac_for(address)}

    def configure_inside(self, ifname: str, address: str, prefix: int, gateway: str) -> None:
        self._record("configure_inside", ifname, address, prefix, gateway)

    def host_networks(self) -> list[str]:
        return list(self.networks)
