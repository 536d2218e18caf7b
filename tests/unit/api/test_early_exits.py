"""`up -d`'s settle window: a container that exits or restarts early is reported, and the window
ends as soon as every young container has exited, restarted or proven itself up."""

from pathlib import Path

import pytest

from envtool.api import stack as api_stack
from envtool.stack import control


def young(name: str, **kw) -> dict:
    return {"name": name, "status": "running", "uptime": 0.1, "restarts": 0, "proven": False, **kw}


@pytest.fixture
def supervisor(monkeypatch, tmp_path):
    """A supervisor whose successive `ps` answers are given by the test; returns the answers list
    and the calls made."""
    answers: list[list[dict]] = []
    calls: list[dict] = []

    class Paths:
        socket = tmp_path / "control.sock"

        def log(self, name: str) -> Path:
            return tmp_path / f"{name}.log"

    Paths.socket.write_text("")
    monkeypatch.setattr(api_stack, "project_paths", lambda project: Paths())
    monkeypatch.setattr(control, "running", lambda paths: True)

    def call(paths, msg):
        calls.append(msg)
        return {"containers": answers[min(len(calls), len(answers)) - 1]}

    monkeypatch.setattr(control, "call", call)
    return answers, calls


def test_the_window_ends_once_every_young_container_proved_itself_up(supervisor):
    answers, calls = supervisor
    answers += [[young("a"), young("b")], [young("a", proven=True), young("b")],
                [young("a", proven=True), young("b", proven=True)]]
    assert api_stack.early_exits("p", {"containers": [young("a"), young("b")]}, window=30) == []
    assert len(calls) == 3              # not polled until the 30 s window ends


def test_an_early_exit_is_reported_with_its_log(supervisor, tmp_path):
    answers, calls = supervisor
    (tmp_path / "b.log").write_text("boom\n")
    answers += [[young("a", proven=True), young("b", status="exited", exit_code=3)]]
    failed = api_stack.early_exits("p", {"containers": [young("a"), young("b")]}, window=30)
    assert [(f["name"], f["log"]) for f in failed] == [("b", ["boom"])]
    assert len(calls) == 1


def test_a_proven_container_is_not_waited_for_at_all(supervisor):
    _, calls = supervisor
    assert api_stack.early_exits("p", {"containers": [young("a", proven=True)]}, window=30) == []
    assert calls == []
