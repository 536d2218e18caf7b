"""The supervisor's rooms that need no root: gating (plan.level_verdict), the typed state record,
the event loop."""

import os
import time

from envtool.stack.loop import EventLoop
from envtool.stack.plan import Member, level_verdict
from envtool.stack.state import ContainerRecord, Status, records


def test_started_is_reached_by_running_or_exited_members():
    assert level_verdict(["db"], [Member("db", "creating")], {}) is None
    assert level_verdict(["db"], [Member("db", "running"), Member("db", "exited", 0)], {}) == ""


def test_a_failed_member_fails_the_level_with_its_reason():
    v = level_verdict(["db"], [Member("db", "failed", 127, "no such image")], {"db": {"healthy"}})
    assert v == "service 'db' could not be started: no such image"


def test_healthy_waits_then_passes_or_names_the_last_check_output():
    needs = {"db": {"healthy"}}
    assert level_verdict(["db"], [Member("db", "starting")], needs) is None
    assert level_verdict(["db"], [Member("db", "healthy")], needs) == ""
    v = level_verdict(["db"], [Member("db", "unhealthy", health_output="connection refused\n")], needs)
    assert v and "never became healthy (status unhealthy): connection refused;" in v
    # an exit that its restart policy will undo is still on its way
    assert level_verdict(["db"], [Member("db", "exited", 1, will_restart=True)], needs) is None
    assert level_verdict(["db"], [Member("db", "exited", 1, will_restart=False)], needs)


def test_completed_needs_exit_zero():
    needs = {"migrate": {"completed"}}
    assert level_verdict(["migrate"], [Member("migrate", "running")], needs) is None
    assert level_verdict(["migrate"], [Member("migrate", "exited", 0)], needs) == ""
    assert "exit code 3" in level_verdict(["migrate"], [Member("migrate", "exited", 3)], needs)


def test_only_the_levels_services_count():
    assert level_verdict(["web"], [Member("db", "failed", 1, "x"), Member("web", "running")], {}) == ""


def test_container_record_round_trip_and_unknown_status():
    rec = ContainerRecord({"name": "p-web-1"}, Status.HEALTHY, 42, 1234, "h", "sha256:x", "web", "10.89.0.2", 1)
    doc = rec.to_json()
    assert doc["status"] == "healthy"
    assert ContainerRecord.from_json(doc) == rec
    old = records({"containers": {"p-web-1": {**doc, "status": "zombie", "future_field": 1}}})
    assert old["p-web-1"].status is Status.EXITED


def test_loop_runs_timers_in_order_watches_fds_and_survives_a_failing_callback():
    loop, seen, errors = EventLoop(), [], []
    r, w = os.pipe()
    loop.at(0.02, lambda: seen.append("late"))
    loop.at(0.0, lambda: seen.append("early"))
    loop.at(0.01, lambda: 1 / 0)

    def readable(fd):
        seen.append(os.read(fd, 10))
        loop.unwatch(fd)
        loop.at(0.0, loop.stop)
    loop.at(0.03, lambda: os.write(w, b"x"))
    loop.watch(r, readable)
    t0 = time.monotonic()
    loop.run(errors.append)
    assert seen == ["early", "late", b"x"]
    assert [type(e) for e in errors] == [ZeroDivisionError]
    assert time.monotonic() - t0 < 2
    os.close(r)
    os.close(w)
