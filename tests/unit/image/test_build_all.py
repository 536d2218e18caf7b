"""Builder.build_all: recipes build side by side, each after the recipes it needs, at most `jobs`
at a time; a failure stops new starts; a cycle falls back to one at a time (build() names it)."""

from __future__ import annotations

import threading
import time

import pytest

from envtool.errors import BuildError
from envtool.image.build import Builder, _has_cycle


class Recorder(Builder):
    def __init__(self, graph: dict[str, list[str]], fail: str | None = None) -> None:
        self.graph, self.fail = graph, fail
        self.recipes = dict.fromkeys(graph)           # type: ignore[assignment]
        self.built = {}
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.order: list[str] = []

    def needs(self, name: str) -> list[str]:
        return self.graph[name]

    def build(self, name: str, stack: tuple[str, ...] = ()):
        if name in self.built:
            return self.built[name]
        assert all(d in self.built for d in self.graph[name]), f"{name} started before what it needs"
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(0.05)
        with self.lock:
            self.running -= 1
            self.order.append(name)
        if name == self.fail:
            raise BuildError(f"{name} failed")
        self.built[name] = name
        return name


def test_independent_recipes_build_side_by_side_within_the_bound():
    b = Recorder({"a": [], "b": [], "c": [], "d": []})
    t0 = time.monotonic()
    assert b.build_all(["a", "b", "c", "d"], jobs=2) == {n: n for n in "abcd"}
    assert b.peak == 2 and time.monotonic() - t0 < 0.18          # two rounds of 50 ms, not four


def test_a_recipe_waits_for_what_it_builds_on_or_copies_from():
    b = Recorder({"app": ["builder", "base"], "builder": ["base"], "base": [], "other": []})
    assert b.build_all(["app", "other"], jobs=4) == {"app": "app", "other": "other"}
    assert b.order.index("base") < b.order.index("builder") < b.order.index("app")


def test_the_first_failure_is_raised_and_nothing_new_starts():
    b = Recorder({"bad": [], "after": ["bad"], "x": []}, fail="bad")
    with pytest.raises(BuildError, match="bad failed"):
        b.build_all(["after", "x"], jobs=2)
    assert "after" not in b.order


def test_one_job_or_a_cycle_builds_in_order():
    b = Recorder({"a": [], "b": []})
    b.build_all(["b", "a"], jobs=1)
    assert b.order == ["b", "a"] and b.peak == 1
    assert _has_cycle({"a": ["b"], "b": ["a"]}) and not _has_cycle({"a": ["b"], "b": []})
