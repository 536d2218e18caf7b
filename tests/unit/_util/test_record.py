"""_util/record.py behaves as the standard library's dataclasses for every way envtool uses them:
the same classes are made with both, and construction, defaults, errors, equality, hashing, repr,
freezing, asdict, replace and fields are compared."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import pytest

from envtool._util import record


def make(lib):
    @lib.dataclass(frozen=True)
    class Point:
        """A documented frozen class."""
        x: int
        y: int = 0
        tags: tuple[str, ...] = ()
        extra: dict[str, int] = lib.field(default_factory=dict)
        note: str = lib.field(default="", compare=False)
        kind: ClassVar[str] = "point"

    @lib.dataclass(frozen=True)
    class Line:
        start: Point
        end: Point
        points: list[Point] = lib.field(default_factory=list)

    @lib.dataclass
    class Mutable:
        name: str
        items: list[int] = lib.field(default_factory=list)
        hidden: int = lib.field(default=7, repr=False)
        later: list[str] = lib.field(init=False, repr=False, default_factory=list)

        def __post_init__(self) -> None:
            self.later.append(self.name)

    @lib.dataclass(eq=False)
    class Identity:
        value: int = 1

    @lib.dataclass(frozen=True)
    class Derived(Point):
        z: int = 3

    return Point, Line, Mutable, Identity, Derived


STD = make(dataclasses)
OURS = make(record)


def outcome(fn):
    try:
        return ("ok", fn())
    except Exception as e:  # noqa: BLE001 - the exception's type is what is compared
        return ("raises", type(e).__name__)


def test_construction_defaults_and_factories():
    for lib, (Point, _Line, Mutable, _, Derived) in ((dataclasses, STD), (record, OURS)):
        p = Point(1)
        assert (p.x, p.y, p.tags, p.extra, p.note, p.kind) == (1, 0, (), {}, "", "point")
        assert Point(1).extra is not Point(1).extra                 # a fresh dict each time
        assert Point(1, 2, ("a",)).tags == ("a",) and Point(x=1, y=5).y == 5
        m = Mutable("n")
        assert m.later == ["n"] and m.hidden == 7                    # __post_init__ ran, init=False set
        d = Derived(1, 2)
        assert (d.x, d.y, d.z) == (1, 2, 3)
        assert [f.name for f in lib.fields(Derived)] == ["x", "y", "tags", "extra", "note", "z"]
        assert Point.__match_args__ == ("x", "y", "tags", "extra", "note")


@pytest.mark.parametrize("call", [
    lambda P: P(), lambda P: P(1, 2, (), {}, "", 9), lambda P: P(1, x=2), lambda P: P(1, nope=2),
])
def test_bad_construction_raises_the_same(call):
    assert outcome(lambda: call(STD[0])) == outcome(lambda: call(OURS[0]))


def test_equality_hash_and_repr():
    for Point, _Line, Mutable, Identity, _ in (STD, OURS):
        assert Point(1, note="a") == Point(1, note="b")             # compare=False
        assert Point(1) != Point(2) and Point(1) != (1,)
        with pytest.raises(TypeError):
            hash(Point(1))                                           # a dict field: unhashable
        assert Mutable("a") == Mutable("a")
        with pytest.raises(TypeError):
            hash(Mutable("a"))                                       # eq without frozen: unhashable
        assert Identity() != Identity() and hash(Identity()) != hash(Identity())
    assert repr(STD[0](1, tags=("a",))).split("(", 1)[1] == repr(OURS[0](1, tags=("a",))).split("(", 1)[1]
    assert repr(STD[2]("a")).split("(", 1)[1] == repr(OURS[2]("a")).split("(", 1)[1]


def test_frozen_and_compared_fields_hash_alike():
    for lib in (dataclasses, record):
        @lib.dataclass(frozen=True)
        class Tag:
            name: str
            n: int = 0
            seen: int = lib.field(default=0, compare=False)

        assert hash(Tag("a", 1, seen=1)) == hash(Tag("a", 1, seen=2)) == hash(("a", 1))
        assert len({Tag("a"), Tag("a"), Tag("b")}) == 2


def test_frozen_instances_refuse_changes():
    for Point, *_ in (STD, OURS):
        p = Point(1)
        with pytest.raises(AttributeError):
            p.x = 2
        with pytest.raises(AttributeError):
            del p.x
        with pytest.raises(AttributeError):
            p.other = 1
    assert issubclass(record.FrozenInstanceError, AttributeError)


def test_asdict_replace_and_fields_agree():
    def build(lib, Point, Line, Mutable, Identity, Derived):
        line = Line(Point(1, tags=("a", "b"), extra={"k": 1}), Point(2), [Point(3)])
        moved = lib.replace(line, end=Point(9))
        m = lib.replace(Mutable("n", [1]), name="o")
        return (lib.asdict(line), lib.asdict(moved), lib.asdict(Derived(4)), m.name, m.items, m.later,
                [f.name for f in lib.fields(Point)], outcome(lambda: lib.replace(Mutable("n"), later=[])),
                outcome(lambda: lib.asdict(1)))
    ours, std = build(record, *OURS), build(dataclasses, *STD)
    assert ours == std
    line = OURS[1](OURS[0](1, extra={"k": 1}), OURS[0](2))
    assert record.asdict(line)["start"]["extra"] is not line.start.extra     # a copy, as the stdlib's


def test_a_mutable_default_is_refused():
    for lib in (dataclasses, record):
        with pytest.raises(ValueError):  # noqa: PT012
            @lib.dataclass
            class Bad:
                items: list[int] = []   # noqa: RUF012 - the point of the test


def test_a_required_field_after_a_default_is_refused():
    for lib in (dataclasses, record):
        with pytest.raises(TypeError):  # noqa: PT012
            @lib.dataclass
            class Bad:
                a: int = 1
                b: str
