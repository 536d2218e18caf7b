"""The location index finds every key and array element that tomli-w writes (hypothesis)."""

import tomllib

import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from envtool.spec.locate import LocationIndex, format_path

keys = st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True) | st.sampled_from(["with space", "dot.ted", "ü"])
scalars = st.integers(-5, 5) | st.text(max_size=8) | st.booleans()
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) |
                      st.dictionaries(keys, inner, min_size=1, max_size=3), max_leaves=12)
documents = st.dictionaries(keys, values, min_size=1, max_size=4)


def paths(value, prefix=()):
    if isinstance(value, dict):
        for k, v in value.items():
            yield prefix + (k,)
            yield from paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if not isinstance(v, dict):  # tomli-w may write arrays of tables as [[x]] headers
                yield prefix + (i,)
            yield from paths(v, prefix + (i,))


@settings(max_examples=200, deadline=None)
@given(documents)
def test_every_written_key_is_located(doc):
    text = tomli_w.dumps(doc)
    assert tomllib.loads(text) == doc
    index = LocationIndex(text)
    for path in paths(doc):
        assert index.exact(path) is not None, (format_path(path), text)


def test_positions_are_exact():
    text = 'a = 1\n[t]\n  b = { c = [1, {d = 2}] }\n[[arr]]\nx = 1\n[[arr]]\nx = 2\n'
    index = LocationIndex(text)
    assert index.exact(("a",)) == (1, 1)
    assert index.exact(("t", "b")) == (3, 3)
    assert index.exact(("t", "b", "c")) == (3, 9)
    assert index.exact(("t", "b", "c", 1, "d")) == (3, 18)
    assert index.exact(("arr", 1, "x")) == (7, 1)


def test_format_path():
    assert format_path(("services", "web", "ports", 1)) == "services.web.ports[1]"
    assert format_path(("a", "b c")) == 'a."b c"'
