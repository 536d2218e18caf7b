"""nftables: the project's ruleset rendered as text (pure), applied as one `nft -f` transaction
through libnftables in process (this module is nft's only caller).

One table per project, `ip envtool-<project>`:
- nat prerouting/output: published ports DNAT to the container (traffic to any local address),
  and each replica slot's service address DNAT to the container serving the slot now (as
  kube-proxy does a ClusterIP): a replacement changes the target for new connections while
  established ones stay with the old container (conntrack) until it has drained;
- nat postrouting: masquerade the subnet's egress, localhost-originated and hairpin traffic;
- filter forward: drop traffic between this bridge and any other envtool bridge; refuse (TCP
  reset) what goes to a service address that no container serves;
- filter input: drop packets from the bridge to 127.0.0.0/8 that no published port DNATed there.
  route_localnet=1 on the bridge (so the host's own 127.0.0.1:PORT reaches a container) would
  otherwise let a container with CAP_NET_RAW reach services bound to the host's loopback
  (CVE-2020-8558; kube-proxy and Docker add the same rule).
When the host has an iptables-nft FORWARD chain (Docker sets its policy to DROP), accept rules for
the bridge are inserted there too, tagged with the project, and removed on teardown.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

from envtool._util.record import dataclass
from envtool.errors import HostError

BRIDGE_GLOB = "et-*"


@dataclass(frozen=True)
class PortRule:
    host_ip: str | None         # None = every local address
    host_port: int
    protocol: str               # tcp | udp
    address: str | None         # a ready container's address; None: published, no replica ready yet
    port: int                   # container port


def table_name(project: str) -> str:
    return f"envtool-{project}"


def isolation_rules(match: str, networks: dict[str, list[str]], link: str) -> list[str]:
    """Containers reach each other only when they share a network: an accept per network, then
    a drop for the rest of the containers' range (fail closed: an address not yet in any set is
    cut off, never let through)."""
    out = []
    for name in sorted(networks):
        members = sorted(set(networks[name]))
        if len(members) > 1:
            group = "{ " + ", ".join(members) + " }"
            out.append(f"{match}ip saddr {group} ip daddr {group} accept")
    out.append(f"{match}ip saddr {link} ip daddr {link} drop")
    return out


def render(project: str, bridge: str, subnet: str, ports: list[PortRule], isolate_host: bool = False,
           services: dict[str, str | None] | None = None, service_net: str | None = None,
           networks: dict[str, list[str]] | None = None, link: str | None = None) -> str:
    """isolate_host: drop everything from the bridge to the host itself (build steps: they reach
    the outside through NAT, never a service of the host's, on loopback or any other address).
    services: service address → the container address serving it (None: refused); service_net:
    the range they come from (refused when unassigned).  Such connections are masqueraded by the
    hairpin rule, so the reply comes back through the host and is un-DNATed.
    networks: network → its containers' addresses (link: the containers' range), when the project
    declares networks: traffic between containers sharing none is dropped, both where the host
    routes it (a service address) and where the bridge switches it (container to container)."""
    t = table_name(project)
    dnat, refuse = [], []
    served = {vip: addr for vip, addr in sorted((services or {}).items()) if addr}
    if served:
        pairs = ", ".join(f"{vip} : {addr}" for vip, addr in served.items())
        dnat.append(f"dnat to ip daddr map {{ {pairs} }}" if len(served) > 1 else
                    f"ip daddr {next(iter(served))} dnat to {next(iter(served.values()))}")
        if len(served) > 1:
            dnat[-1] = f"ip daddr {{ {', '.join(served)} }} " + dnat[-1]
    for (host_ip, host_port, proto), backends in _groups(ports).items():
        match = f"ip daddr {host_ip} " if host_ip and host_ip not in ("0.0.0.0",) else "fib daddr type local "
        if not backends:              # published, nothing ready: refused at once, not left hanging
            refuse.append(f"{match}{proto} dport {host_port} " + ("reject with tcp reset" if proto == "tcp" else "reject"))
        elif len(backends) == 1:
            dnat.append(f"{match}{proto} dport {host_port} dnat to {backends[0][0]}:{backends[0][1]}")
        elif len({port for _, port in backends}) == 1:   # replicas: the kernel balances new connections
            pairs = ", ".join(f"{i} : {addr}" for i, (addr, _) in enumerate(backends))
            dnat.append(f"{match}{proto} dport {host_port} dnat to numgen inc mod {len(backends)} map "
                        f"{{ {pairs} }} : {backends[0][1]}")
        else:
            pairs = ", ".join(f"{i} : {addr} . {port}" for i, (addr, port) in enumerate(backends))
            dnat.append(f"{match}{proto} dport {host_port} dnat ip addr . port to numgen inc mod {len(backends)} "
                        f"map {{ {pairs} }}")
    lines = [
        f"table ip {t} {{",
        "  chain prerouting {", "    type nat hook prerouting priority dstnat; policy accept;",
        *(f"    {r}" for r in dnat), "  }",
        "  chain output {", "    type nat hook output priority -100; policy accept;",
        *(f"    {r}" for r in dnat), "  }",
        "  chain postrouting {", "    type nat hook postrouting priority srcnat; policy accept;",
        f'    ip saddr {subnet} oifname != "{bridge}" masquerade',
        f'    oifname "{bridge}" ip saddr 127.0.0.0/8 masquerade',
        f'    oifname "{bridge}" ct status dnat ip saddr {subnet} masquerade',
        "  }",
        "  chain input {", "    type filter hook input priority filter - 1; policy accept;",
        f'    iifname "{bridge}" ip daddr 127.0.0.0/8 ct status & dnat != dnat drop',
        *([f'    iifname "{bridge}" drop'] if isolate_host else []),
        *(f"    {r}" for r in refuse),
        "  }",
        "  chain forward {", "    type filter hook forward priority filter - 1; policy accept;",
        f'    iifname "{bridge}" oifname "{BRIDGE_GLOB}" oifname != "{bridge}" drop',
        f'    oifname "{bridge}" iifname "{BRIDGE_GLOB}" iifname != "{bridge}" drop',
        *([f"    ip daddr {service_net} meta l4proto tcp reject with tcp reset",
           f"    ip daddr {service_net} reject"] if service_net else []),
        *(f"    {r}" for r in (isolation_rules("", networks, link) if networks is not None and link else [])),
        "  }",
        "}",
    ]
    if networks is not None and link:
        lines += [f"table bridge {t} {{",
                  "  chain forward {", "    type filter hook forward priority filter; policy accept;",
                  *(f"    {r}" for r in isolation_rules("ether type ip ", networks, link)),
                  "  }", "}"]
    return "\n".join(lines) + "\n"


def _groups(ports: list[PortRule]) -> dict[tuple[str | None, int, str], list[tuple[str, int]]]:
    """Published (host ip, port, protocol) → its ready backends (address, port), sorted."""
    out: dict[tuple[str | None, int, str], list[tuple[str, int]]] = {}
    for p in ports:
        backends = out.setdefault((p.host_ip, p.host_port, p.protocol), [])
        if p.address is not None:
            backends.append((p.address, p.port))
    return {k: sorted(v) for k, v in out.items()}


def nft_path() -> str:
    path = shutil.which("nft") or next((p for p in ("/usr/sbin/nft", "/sbin/nft") if os.path.exists(p)), None)
    if not path:
        raise HostError("nft is not installed; published ports and NAT use nftables",
                        hint="apt-get install -y nftables")
    return path


# `nft` options that the library takes as output flags (libnftables.h: NFT_CTX_OUTPUT_HANDLE, _JSON)
_OUTPUT_FLAGS = {"-a": 1 << 3, "-j": 1 << 4}


def _nft(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`nft ARGS` (`-f -` reads `stdin`): in process where libnftables loads, else the command."""
    lib = _libnftables()
    if lib is not None and args == ("-f", "-") and stdin is not None:
        proc = lib.run(stdin)
    elif lib is not None and stdin is None and (command := _as_command(args)) is not None:
        proc = lib.run(command[1], flags=command[0])
    else:
        proc = subprocess.run([nft_path(), *args], input=stdin, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise HostError(f"nft {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc


def _as_command(args: tuple[str, ...]) -> tuple[int, str] | None:
    """(output flags, command text) of a command line like `nft -j -a list chain ip filter FORWARD`;
    None for options the library is not given here."""
    flags, i = 0, 0
    while i < len(args) and args[i].startswith("-"):
        if args[i] not in _OUTPUT_FLAGS:
            return None
        flags |= _OUTPUT_FLAGS[args[i]]
        i += 1
    return (flags, " ".join(args[i:]) + "\n") if i < len(args) else None


class _Libnftables:
    """`nft` in process, through libnftables (the library the nft command is built on, in Debian's
    libnftables1, which nftables depends on): the same parser and the same netlink transaction,
    without a fork and exec of nft from a large process (~10 ms of each change of the port map,
    several of which lie on the path of every `up`).

    One context, and with it one netlink socket, serves the whole process.  The kernel finishes a
    transaction that deleted anything (every replacement of the project's table does) when the
    socket that sent it is closed: nf_tables then waits for the deleted rules' release after an RCU
    grace period, 8-27 ms here.  A context per transaction, closed after it, paid that on every
    change of the port map; a kept one pays it once, when the process exits (0.5-2 ms a change,
    against ~20, measured in a namespace of its own).  A context is kept per process and network
    namespace: a forked child opens its own (the parent's socket may be closed there, its number
    reused), and so does a thread that has entered another namespace (a netlink socket speaks to the
    namespace it was opened in).  The socket is marked close-on-exec (libnftables leaves it
    inheritable), and a lock keeps threads (concurrent builds) from sharing a transaction."""

    def __init__(self, lib: Any) -> None:
        import ctypes
        import threading

        self.lib = lib
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        for fn in (lib.nft_ctx_buffer_output, lib.nft_ctx_buffer_error, lib.nft_ctx_free):
            fn.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        for fn in (lib.nft_ctx_get_output_buffer, lib.nft_ctx_get_error_buffer):
            fn.argtypes = [ctypes.c_void_p]
            fn.restype = ctypes.c_char_p
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        self.lock = threading.Lock()
        self.contexts: dict[tuple[int, int], int] = {}      # (pid, netns inode) → context

    def _context(self) -> int:
        key = (os.getpid(), os.stat("/proc/thread-self/ns/net").st_ino)
        if key not in self.contexts:                        # a parent's are left as they are
            before = _open_fds()
            ctx = self.lib.nft_ctx_new(0)
            if not ctx:
                raise HostError("libnftables: cannot create a context")
            self.lib.nft_ctx_buffer_output(ctx)             # nothing on our stdout / stderr
            self.lib.nft_ctx_buffer_error(ctx)
            self.lib.nft_run_cmd_from_buffer(ctx, b"list tables\n")   # its socket is open now
            self.lib.nft_ctx_get_output_buffer(ctx)
            self.lib.nft_ctx_get_error_buffer(ctx)
            for fd, _ in _open_fds() - before:
                try:
                    os.set_inheritable(fd, False)
                except OSError:
                    pass
            self.contexts[key] = ctx
        return self.contexts[key]

    def run(self, text: str, flags: int = 0) -> subprocess.CompletedProcess[str]:
        with self.lock:
            ctx = self._context()
            self.lib.nft_ctx_output_set_flags(ctx, flags)
            rc = self.lib.nft_run_cmd_from_buffer(ctx, text.encode())
            out = (self.lib.nft_ctx_get_output_buffer(ctx) or b"").decode(errors="replace")   # each get
            err = (self.lib.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace")    # empties it
        return subprocess.CompletedProcess(["libnftables"], 1 if rc else 0, out, err)


def _open_fds() -> set[tuple[int, str]]:
    """(fd, what it is): an fd number alone would be ambiguous, the listing's own is reused."""
    out = set()
    try:
        for n in os.listdir("/proc/self/fd"):
            try:
                out.add((int(n), os.readlink(f"/proc/self/fd/{n}")))
            except OSError:
                pass
    except OSError:
        pass
    return out


_lib: list[_Libnftables | None] = []


def _libnftables() -> _Libnftables | None:
    """Loaded once per process; None (the nft command is used) where the library is missing or
    ENVTOOL_NFT=exec asks for the command."""
    if not _lib:
        found = None
        if os.environ.get("ENVTOOL_NFT") != "exec":
            import ctypes

            try:
                found = _Libnftables(ctypes.CDLL("libnftables.so.1"))
            except (OSError, AttributeError):
                found = None
        _lib.append(found)
    return _lib[0]


def apply(project: str, bridge: str, subnet: str, ports: list[PortRule], isolate_host: bool = False,
          services: dict[str, str | None] | None = None, service_net: str | None = None,
          networks: dict[str, list[str]] | None = None, link: str | None = None) -> None:
    """Replace the project's tables atomically, in one `nft -f` transaction: each table is added
    (a no-op when it exists, so that its delete cannot fail) and deleted, then declared anew.  One
    transaction per change of the published ports or service map; the host FORWARD accept rules are
    put in place once per bridge and process (they name the bridge, nothing that changes)."""
    text = clear(project) + render(project, bridge, subnet, ports, isolate_host, services, service_net, networks, link)
    _nft("-f", "-", stdin=text)
    if (project, bridge) not in _forward_accepted:
        _host_forward_accept(project, bridge)
        _forward_accepted.add((project, bridge))


_forward_accepted: set[tuple[str, str]] = set()


def clear(project: str) -> str:
    """nft commands that delete the project's tables, whether they exist or not (each is added
    first, a no-op when it exists, so that its delete cannot fail)."""
    t = table_name(project)
    return "".join(f"add table {family} {t}\ndelete table {family} {t}\n" for family in ("ip", "bridge"))


def remove(project: str, bridge: str) -> None:
    _nft("-f", "-", stdin=clear(project), check=False)
    _host_forward_remove(project)
    _forward_accepted.discard((project, bridge))


def tables() -> list[str]:
    proc = _nft("-j", "list", "tables", check=False)
    if proc.returncode != 0:
        return []
    out = []
    for item in json.loads(proc.stdout).get("nftables", []):
        name = item.get("table", {}).get("name", "")
        if name.startswith("envtool-"):
            out.append(name)
    return out


def _host_forward_rules(project: str) -> list[int] | None:
    """Handles of the project's accept rules in the host's `ip filter FORWARD` chain (iptables-nft's,
    where Docker sets a DROP policy); None when the host has no such chain."""
    proc = _nft("-j", "-a", "list", "chain", "ip", "filter", "FORWARD", check=False)
    if proc.returncode != 0:
        return None
    return [int(item["rule"]["handle"]) for item in json.loads(proc.stdout).get("nftables", [])
            if item.get("rule", {}).get("comment") == f"envtool:{project}"]


def _host_forward_accept(project: str, bridge: str) -> None:
    """The bridge's two accept rules, in place of the project's earlier ones: one list, one
    transaction."""
    old = _host_forward_rules(project)
    if old is None:
        return
    text = "".join(f"delete rule ip filter FORWARD handle {h}\n" for h in old)
    text += "".join(f'insert rule ip filter FORWARD {rule} comment "envtool:{project}"\n'
                    for rule in (f'iifname "{bridge}" accept', f'oifname "{bridge}" accept'))
    _nft("-f", "-", stdin=text)


def _host_forward_remove(project: str) -> None:
    old = _host_forward_rules(project)
    if old:
        _nft("-f", "-", stdin="".join(f"delete rule ip filter FORWARD handle {h}\n" for h in old), check=False)
