"""The pure parts of debian:<suite> bases: the build's environment, apt sources, package lists."""

import pytest

from envtool.errors import HostError
from envtool.image.sources.debian import build_environment, host_sources, parse_packages, pin_preferences


def test_the_build_sees_proxies_and_nothing_else_of_the_callers_environment():
    env = build_environment(1700000000, {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": "/x", "LD_PRELOAD": "y.so",
                                         "LANG": "de_DE.UTF-8", "https_proxy": "http://proxy:3128",
                                         "PATH": "/opt/bin:/usr/bin"})
    assert env == {"https_proxy": "http://proxy:3128", "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                   "/sbin:/bin", "LC_ALL": "C.UTF-8", "HOME": "/root", "SOURCE_DATE_EPOCH": "1700000000"}
    assert build_environment(5, {}) == build_environment(5, {"TERM": "xterm", "USER": "alice"})


def test_host_sources_are_rewritten_for_the_suite(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "deb [signed-by=/usr/share/keyrings/k.gpg] http://mirror.invalid/debian bookworm main contrib\n"
        "deb http://mirror.invalid/debian-security bookworm-security main\n"
        "deb http://other.invalid/ubuntu jammy main\n")
    (tmp_path / "sources.list.d" / "extra.sources").write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm-updates\nComponents: main\n")
    text = host_sources("trixie", str(tmp_path), codename="bookworm")
    assert "Suites: trixie\n" in text and "Signed-By: /usr/share/keyrings/k.gpg" in text
    assert "Suites: trixie-security" in text and "Suites: trixie-updates" in text
    assert "jammy" not in text and "ubuntu" not in text


def test_no_debian_sources_is_a_clear_error_with_the_way_out(tmp_path):
    (tmp_path / "sources.list").write_text("# nothing\n")
    with pytest.raises(HostError, match="no Debian apt sources") as e:
        host_sources("bookworm", str(tmp_path), codename="bookworm")
    assert "ENVTOOL_DEBIAN_MIRROR" in (e.value.hint or "")


def test_package_list_and_pins():
    text = ("Package: python3\nVersion: 3.11.2-1+b1\nArchitecture: amd64\nSHA256: ab12\nDescription: x\n"
            " continued: not a field\n\nPackage: bash\nVersion: 5.2.15-2+b2\nArchitecture: amd64\n\n")
    pkgs = parse_packages(text)
    assert [(p.name, p.version, p.sha256) for p in pkgs] == [("bash", "5.2.15-2+b2", ""),
                                                             ("python3", "3.11.2-1+b1", "ab12")]
    assert pin_preferences({"python3": "3.11.2-1+b1"}) == (
        "Package: python3\nPin: version 3.11.2-1+b1\nPin-Priority: 1001\n\n")


def test_mirror_must_be_one_url(monkeypatch):
    import pytest

    from envtool.errors import UsageError
    from envtool.image.sources.debian import sources_for

    monkeypatch.setenv("ENVTOOL_DEBIAN_MIRROR", "http://example.invalid/debian\nTrusted: yes")
    with pytest.raises(UsageError, match="single URL"):
        sources_for("bookworm", None)
    assert "URIs: https://example.invalid/debian\n" in sources_for("bookworm", "https://example.invalid/debian")


def test_free_subordinate_range_avoids_every_taken_range():
    from envtool.image.sources.debian import SUBID_COUNT, SUBID_FLOOR, free_subid_start

    assert free_subid_start([]) == SUBID_FLOOR
    assert free_subid_start([(100000, 65536)]) == SUBID_FLOOR
    taken = [(SUBID_FLOOR, SUBID_COUNT), (SUBID_FLOOR + SUBID_COUNT + 5, 10)]
    assert free_subid_start(taken) == SUBID_FLOOR + 2 * SUBID_COUNT
