import pytest

from envtool._util.units import format_duration, parse_duration, parse_size


@pytest.mark.parametrize(("text", "seconds"), [("1s", 1), ("500ms", 0.5), ("1m30s", 90), ("2h", 7200),
                                                ("10", 10), (3, 3), ("1.5s", 1.5)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "1x", "s", "1s2", "-1s", True])
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_duration_round_trip():
    for s in (0.5, 1, 30, 60, 90):
        assert parse_duration(format_duration(s)) == s


@pytest.mark.parametrize(("text", "n"), [("64M", 64 << 20), ("1g", 1 << 30), ("512k", 512 << 10),
                                         ("1GiB", 1 << 30), ("100", 100), (4096, 4096)])
def test_sizes(text, n):
    assert parse_size(text) == n


@pytest.mark.parametrize("bad", ["", "12q", "M", "-5M"])
def test_bad_sizes(bad):
    with pytest.raises(ValueError):
        parse_size(bad)
