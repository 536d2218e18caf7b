"""What a container's network namespace says about its TCP sockets, read from /proc/<pid>/net/tcp
and tcp6 (the table of the namespace the pid lives in): the ports it listens on (a replacement is
ready once it listens where its predecessor did) and the connections it is serving (a container
that leaves the port map drains them before its stop signal).  A connection whose first packet was
DNATed to a leaving container just before it left the map is not in its table yet: the host's
conntrack table (/proc/net/nf_conntrack) shows it as a handshake under way to its address."""

from __future__ import annotations

LISTEN = "0A"
ESTABLISHED = "01"
SYN_RECV = "03"


def _rows(pid: int) -> list[tuple[int, int, str]]:
    """(local port, remote port, state) of every TCP socket in the pid's network namespace."""
    out = []
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        out.extend(parse(lines))
    return out


def parse(lines: list[str]) -> list[tuple[int, int, str]]:
    rows = []
    for line in lines:
        parts = line.split()
        if len(parts) < 4:
            continue
        try:
            local = int(parts[1].rsplit(":", 1)[1], 16)
            remote = int(parts[2].rsplit(":", 1)[1], 16)
        except (IndexError, ValueError):
            continue
        rows.append((local, remote, parts[3].upper()))
    return rows


def listening(pid: int) -> frozenset[int]:
    return listening_in(_rows(pid))


def listening_in(rows: list[tuple[int, int, str]]) -> frozenset[int]:
    return frozenset(local for local, _, st in rows if st == LISTEN)


def serving(pid: int) -> int:
    """Connections accepted (or being accepted) on one of the namespace's listening ports."""
    return serving_in(_rows(pid))


def serving_in(rows: list[tuple[int, int, str]]) -> int:
    ports = listening_in(rows)
    return sum(1 for local, _, st in rows if st in (ESTABLISHED, SYN_RECV) and local in ports)


HANDSHAKE = ("SYN_SENT", "SYN_RECV", "SYN_SENT2")


def handshakes_to(address: str, path: str = "/proc/net/nf_conntrack") -> int:
    """TCP connections the host has NATed (or is passing) towards the address that have not
    finished their handshake: they will arrive in its namespace's table in a moment."""
    try:
        with open(path) as f:
            return handshakes_in(f.read().splitlines(), address)
    except OSError:
        return 0


def handshakes_in(lines: list[str], address: str) -> int:
    reply_src = f"src={address}"
    n = 0
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or parts[2] != "tcp" or parts[5] not in HANDSHAKE:
            continue
        srcs = [p for p in parts if p.startswith("src=")]
        if len(srcs) >= 2 and srcs[1] == reply_src:        # the reply comes from it: it is the server
            n += 1
    return n
