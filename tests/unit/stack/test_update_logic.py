"""Rolling replacement bookkeeping (stack/update.py), the /proc/net/tcp reader and the update
order rule, without containers."""

from types import SimpleNamespace

from envtool.stack import sockets
from envtool.stack.update import DONE, QUEUED, RETIRING, STARTING, Replacement, ServiceUpdate, failure


def _swap(slot: str, phase: str = QUEUED) -> Replacement:
    return Replacement(slot, object(), object(), phase=phase)


def _removal(slot: str, phase: str = QUEUED) -> Replacement:
    return Replacement(slot, object(), None, phase=phase)


def test_parallelism_bounds_what_starts_and_removals_wait_for_every_swap():
    u = ServiceUpdate("web", 2, "rollback", [_swap("w1"), _swap("w2"), _swap("w3"), _removal("w4")])
    assert [r.slot for r in u.due()] == ["w1", "w2"]
    u.items[0].phase, u.items[1].phase = STARTING, RETIRING
    assert u.due() == []                                   # two under way
    u.items[0].phase = DONE
    assert [r.slot for r in u.due()] == ["w3"]
    u.items[1].phase = u.items[2].phase = DONE
    assert [r.slot for r in u.due()] == ["w4"] and not u.finished()
    u.items[3].phase = DONE
    assert u.finished() and u.summary() == "3 of 3"


def test_nothing_starts_after_a_failure_and_the_update_ends_when_nothing_is_under_way():
    u = ServiceUpdate("web", 1, "pause", [_swap("w1", STARTING), _swap("w2")])
    u.failed = "new container w1 exited with code 1"
    assert u.due() == [] and not u.finished()
    u.items[0].phase = "undone"
    assert u.finished()


def _new(status: str, **kw) -> SimpleNamespace:
    base = {"error": "", "exit_code": None, "oom_killed": False, "health": None}
    return SimpleNamespace(status=status, **{**base, **kw})


def test_failure_names_why_a_new_container_failed():
    assert failure(_new("running"), now=1, deadline=2, monitor=60) == ""
    assert failure(_new("running"), now=2, deadline=2, monitor=60) == \
        "was not ready within its monitor period (60s)"
    assert failure(_new("exited", exit_code=3), 1, 2, 60) == "exited with code 3"
    assert failure(_new("restarting", exit_code=137, oom_killed=True), 1, 2, 60) == \
        "exited with code 137 (out of memory)"
    assert failure(_new("failed", error="no such file /app"), 1, 2, 60) == "could not be started: no such file /app"
    sick = _new("unhealthy", health=SimpleNamespace(last_output="db down\n"))
    assert failure(sick, 1, 2, 60) == "became unhealthy: db down"


TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   1: 0500590A:1F40 0100590A:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1
   2: 0500590A:D431 0200590A:18EB 01 00000000:00000000 00:00000000 00000000     0        0 3 1
   3: 0500590A:1F40 0100590A:C351 06 00000000:00000000 00:00000000 00000000     0        0 4 1
"""


def test_listening_ports_and_served_connections_from_proc_net_tcp():
    rows = sockets.parse(TCP.splitlines()[1:])
    assert sockets.listening_in(rows) == {8000}
    # one connection to port 8000 is served; the one to 6379 is the container's own (a client);
    # TIME_WAIT does not hold a drain
    assert sockets.serving_in(rows) == 1


def test_a_handshake_natted_to_a_leaving_container_keeps_it_draining():
    table = [
        "ipv4 2 tcp 6 118 SYN_SENT src=127.0.0.1 dst=127.0.0.1 sport=40000 dport=8080 "
        "src=10.89.0.3 dst=10.89.0.1 sport=8000 dport=40000 mark=0 zone=0 use=2",
        "ipv4 2 tcp 6 100 TIME_WAIT src=127.0.0.1 dst=127.0.0.1 sport=40001 dport=8080 "
        "src=10.89.0.3 dst=10.89.0.1 sport=8000 dport=40001 [ASSURED] mark=0 zone=0 use=2",
        "ipv4 2 tcp 6 59 SYN_RECV src=10.89.0.3 dst=10.89.0.4 sport=40002 dport=5432 "
        "src=10.89.0.4 dst=10.89.0.3 sport=5432 dport=40002 mark=0 zone=0 use=2",
        "ipv4 2 udp 17 28 src=127.0.0.1 dst=10.89.0.3 sport=1 dport=53 src=10.89.0.3 dst=127.0.0.1 "
        "sport=53 dport=1 mark=0 zone=0 use=2",
    ]
    assert sockets.handshakes_in(table, "10.89.0.3") == 1       # the SYN towards it, not its own client side
    assert sockets.handshakes_in(table, "10.89.0.4") == 1
    assert sockets.handshakes_in(table, "10.89.0.30") == 0
