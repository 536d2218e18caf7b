import socket
import struct

from envtool.network import nft
from envtool.network.dns import DnsServer, answer, parse_query


def test_ruleset_text():
    text = nft.render("shop", "et-abc", "10.89.3.0/24",
                      [nft.PortRule(None, 8080, "tcp", "10.89.3.2", 80), nft.PortRule("127.0.0.1", 53, "udp", "10.89.3.3", 53)])
    assert "table ip envtool-shop {" in text
    assert text.count("fib daddr type local tcp dport 8080 dnat to 10.89.3.2:80") == 2      # prerouting + output
    assert text.count("ip daddr 127.0.0.1 udp dport 53 dnat to 10.89.3.3:53") == 2
    assert 'ip saddr 10.89.3.0/24 oifname != "et-abc" masquerade' in text
    assert 'iifname "et-abc" oifname "et-*" oifname != "et-abc" drop' in text


def query(name: str, qtype: int = 1, qid: int = 0x1234) -> bytes:
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack("!HH", qtype, 1)


def test_answer_wire_format():
    q = parse_query(query("Web"))
    assert q.name == "web" and q.qtype == 1
    resp = answer(q, ["10.89.0.2", "10.89.0.3"])
    qid, flags, qd, an = struct.unpack("!HHHH", resp[:8])
    assert (qid, flags & 0x800F, qd, an) == (0x1234, 0x8000, 1, 2)
    assert resp.endswith(socket.inet_aton("10.89.0.3"))
    nx = answer(q, None)
    assert struct.unpack("!H", nx[2:4])[0] & 0xF == 3


def test_malformed_queries_are_ignored():
    assert parse_query(b"\x00" * 5) is None
    assert parse_query(query("a") [:-3]) is None


def test_server_answers_and_forwards_on_loopback():
    upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    upstream.bind(("127.0.0.1", 0))
    srv = DnsServer("127.0.0.1", lambda n, c: ["10.89.0.2"] if n == "web" else None, upstreams=["127.0.0.1"],
                    port=0, upstream_port=upstream.getsockname()[1])
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.settimeout(2)
    try:
        addr = srv.sock.getsockname()
        client.sendto(query("web"), addr)
        srv.handle(srv.sock)
        data, _ = client.recvfrom(512)
        assert data.endswith(socket.inet_aton("10.89.0.2"))
        client.sendto(query("example.org", qid=7), addr)
        srv.handle(srv.sock)                               # forwarded upstream with a new id
        upstream.settimeout(2)
        fwd, peer = upstream.recvfrom(512)
        assert fwd[2:] == query("example.org", qid=7)[2:]
        upstream.sendto(fwd[:2] + b"\x81\x80" + fwd[4:], peer)
        srv.handle(srv.upstream)
        back, _ = client.recvfrom(512)
        assert back[:2] == b"\x00\x07"                    # the client's own id restored
        client.sendto(query("nosuchname", qid=9), addr)   # single label: not forwarded
        srv.handle(srv.sock)
        assert struct.unpack("!H", client.recvfrom(512)[0][2:4])[0] & 0xF == 3
    finally:
        srv.close()
        client.close()
        upstream.close()


def test_ruleset_drops_loopback_from_the_bridge_unless_dnated_and_can_isolate_the_host():
    """CVE-2020-8558: route_localnet=1 on the bridge; build steps (isolate_host) see nothing of the host."""
    text = nft.render("shop", "et-abc", "10.89.3.0/24", [])
    assert 'iifname "et-abc" ip daddr 127.0.0.0/8 ct status & dnat != dnat drop' in text
    assert '    iifname "et-abc" drop\n' not in text
    assert '    iifname "et-abc" drop\n' in nft.render("b", "et-abc", "10.89.3.0/24", [], isolate_host=True)


def test_server_answers_only_its_clients_network():
    """Another project's containers reach this server through the host: they get no answer."""
    for clients, answered in (("127.0.0.0/8", True), ("10.89.7.0/24", False)):
        srv = DnsServer("127.0.0.1", lambda n, c: ["10.89.7.2"] if n == "db" else None, upstreams=[], port=0,
                        clients=clients)
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.settimeout(0.3)
        try:
            c.sendto(query("db"), srv.sock.getsockname())
            srv.sock.setblocking(True)
            srv.sock.settimeout(1.0)
            srv.handle(srv.sock)
            try:
                got = c.recv(512)
            except TimeoutError:
                got = b""
            assert bool(got) is answered, clients
        finally:
            c.close()
            srv.close()


def test_replicas_behind_one_port_are_balanced_and_a_port_with_none_ready_is_refused():
    text = nft.render("shop", "et-abc", "10.89.3.0/24", [
        nft.PortRule(None, 8080, "tcp", "10.89.3.3", 5000), nft.PortRule(None, 8080, "tcp", "10.89.3.2", 5000),
        nft.PortRule("127.0.0.1", 9090, "tcp", None, 80), nft.PortRule(None, 5353, "udp", None, 53)])
    assert text.count("tcp dport 8080 dnat to numgen inc mod 2 map { 0 : 10.89.3.2, 1 : 10.89.3.3 } : 5000") == 2
    assert "ip daddr 127.0.0.1 tcp dport 9090 reject with tcp reset" in text
    assert "fib daddr type local udp dport 5353 reject" in text
    assert "dport 9090 dnat" not in text


def test_networks_isolate_containers_that_share_none():
    """Routed (a service address) and switched (container to container) traffic alike: an accept
    per network, then the containers' whole range dropped (an address in no set yet is cut off)."""
    text = nft.render("p", "et-p", "10.89.5.0/24", [], networks={"front": ["10.89.5.2", "10.89.5.3"],
                                                                 "back": ["10.89.5.3", "10.89.5.4"]},
                      link="10.89.5.0/25")
    ip_forward = text.split("chain forward {")[1].split("table bridge")[0]
    assert "ip saddr { 10.89.5.2, 10.89.5.3 } ip daddr { 10.89.5.2, 10.89.5.3 } accept" in ip_forward
    assert ip_forward.strip().removesuffix("}").strip().removesuffix("}").strip().endswith(
        "ip saddr 10.89.5.0/25 ip daddr 10.89.5.0/25 drop")
    bridge = text.split("table bridge envtool-p {")[1]
    assert "ether type ip ip saddr { 10.89.5.3, 10.89.5.4 } ip daddr { 10.89.5.3, 10.89.5.4 } accept" in bridge
    assert "table bridge" not in nft.render("p", "et-p", "10.89.5.0/24", [])
