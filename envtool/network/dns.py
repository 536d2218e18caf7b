"""Service-name DNS on the bridge address: A records for services (every replica), replicas
(`web-1`) and containers; everything else is forwarded to the host's resolvers.

The wire format code (`parse_query`, `answer`) is pure; `DnsServer` is driven by the supervisor's
event loop (`fileno`s + `handle`), never by a thread of its own.
"""

from __future__ import annotations

import ipaddress
import itertools
import socket
import struct
import time
from collections.abc import Callable

from envtool._util.record import dataclass

QTYPE_A, QTYPE_AAAA, QCLASS_IN = 1, 28, 1
RCODE_OK, RCODE_SERVFAIL, RCODE_NXDOMAIN = 0, 2, 3
TTL = 5


@dataclass(frozen=True)
class Query:
    id: int
    flags: int
    name: str
    qtype: int
    qclass: int
    question: bytes          # the raw question section, echoed in the answer


def parse_query(data: bytes) -> Query | None:
    if len(data) < 12:
        return None
    qid, flags, qd = struct.unpack("!HHH", data[:6])
    if flags & 0x8000 or qd != 1:
        return None
    labels, i = [], 12
    while True:
        if i >= len(data):
            return None
        n = data[i]
        if n == 0:
            i += 1
            break
        if n & 0xC0 or i + 1 + n > len(data):
            return None
        labels.append(data[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    if i + 4 > len(data):
        return None
    qtype, qclass = struct.unpack("!HH", data[i:i + 4])
    return Query(qid, flags, ".".join(labels).lower(), qtype, qclass, data[12:i + 4])


def answer(q: Query, addresses: list[str] | None) -> bytes:
    """A response to q: the addresses as A records, NXDOMAIN when addresses is None."""
    rd = q.flags & 0x0100
    opcode = q.flags & 0x7800
    rcode = RCODE_NXDOMAIN if addresses is None else RCODE_OK
    records = []
    if addresses and q.qtype == QTYPE_A and q.qclass == QCLASS_IN:
        for addr in addresses:
            records.append(struct.pack("!HHHIH", 0xC00C, QTYPE_A, QCLASS_IN, TTL, 4)
                           + ipaddress.IPv4Address(addr).packed)
    flags = 0x8000 | opcode | 0x0400 | rd | 0x0080 | rcode
    return struct.pack("!HHHHHH", q.id, flags, 1, len(records), 0, 0) + q.question + b"".join(records)


def host_resolvers(path: str = "/etc/resolv.conf") -> list[str]:
    out = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    out.append(parts[1])
    except OSError:
        pass
    return [r for r in out if ":" not in r] or []


class DnsServer:
    """UDP server on (address, 53).  `lookup(name)` returns addresses, or None when the name is
    not the project's (then the query is forwarded)."""

    def __init__(self, address: str, lookup: Callable[[str, str], list[str] | None],
                 upstreams: list[str] | None = None, port: int = 53, upstream_port: int = 53,
                 clients: str | None = None) -> None:
        """clients: the only network whose queries are answered (the project's subnet): another
        project's containers reach this address through the host and must learn nothing here."""
        self.clients = ipaddress.IPv4Network(clients) if clients else None
        self.upstream_port = upstream_port
        self.lookup = lookup
        self.upstreams = upstreams if upstreams is not None else host_resolvers()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, port))
        self.sock.setblocking(False)
        self.upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.upstream.setblocking(False)
        self.pending: dict[int, tuple[tuple[str, int], int, float]] = {}
        self._ids = itertools.cycle(range(1, 65536))

    def fileno_list(self) -> list[socket.socket]:
        return [self.sock, self.upstream]

    def close(self) -> None:
        self.sock.close()
        self.upstream.close()

    def handle(self, sock: socket.socket) -> None:
        try:
            data, peer = sock.recvfrom(4096)
        except (BlockingIOError, ConnectionRefusedError):
            return
        if sock is self.upstream:
            self._relay_back(data)
            return
        if self.clients is not None and ipaddress.IPv4Address(peer[0]) not in self.clients:
            return
        q = parse_query(data)
        if q is None:
            return
        name = q.name.rstrip(".")
        found = self.lookup(name, peer[0])
        if found is not None or not self.upstreams or "." not in name:
            self._send(answer(q, found), peer)
            return
        self._forward(data, peer, q)

    def _send(self, data: bytes, peer: tuple[str, int]) -> None:
        try:
            self.sock.sendto(data, peer)
        except OSError:
            pass

    def _forward(self, data: bytes, peer: tuple[str, int], q: Query) -> None:
        self._expire()
        new_id = next(self._ids)
        self.pending[new_id] = (peer, q.id, time.monotonic())
        packet = struct.pack("!H", new_id) + data[2:]
        try:
            self.upstream.sendto(packet, (self.upstreams[0], self.upstream_port))
        except OSError:
            self.pending.pop(new_id, None)
            self._send(struct.pack("!HH", q.id, 0x8180 | RCODE_SERVFAIL) + data[4:], peer)

    def _relay_back(self, data: bytes) -> None:
        if len(data) < 12:
            return
        new_id = struct.unpack("!H", data[:2])[0]
        entry = self.pending.pop(new_id, None)
        if entry:
            peer, old_id, _ = entry
            self._send(struct.pack("!H", old_id) + data[2:], peer)

    def _expire(self, max_age: float = 5.0) -> None:
        now = time.monotonic()
        for k in [k for k, (_, _, t) in self.pending.items() if now - t > max_age]:
            del self.pending[k]
