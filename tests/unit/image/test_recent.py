"""image/recent.py: the record of a recipe's last build is taken only while nothing it was built from
changed: the project file, .env, the lock, the ignore file, the variables the file names or that
steer a build, and every copied path's stat data."""

import os
import time

import pytest

from envtool.image import recent

TOML = """[project]
name = "demo"

[images.base]
from = "debian:bookworm"
env = { GREETING = "${GREETING:-hi}" }

[images.app]
from = "image:base"
copy = [{ src = "app", dst = "/app" }, { src = "extra.txt", dst = "/extra.txt" }]
"""

DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setattr(recent, "RACY_NS", 0)          # files written by the test are "new"
    p = tmp_path / "proj"
    (p / "app" / "sub").mkdir(parents=True)
    (p / "app" / "main.py").write_text("print('one')\n")
    (p / "app" / "sub" / "util.py").write_text("X = 1\n")
    (p / "extra.txt").write_text("extra\n")
    (p / "envtool.toml").write_text(TOML)
    return p


def recipes(project):
    from envtool.spec.load import load

    return load(project / "envtool.toml", environ={}).project.images


def record(project, cache, environ=None, names=("app",)):
    r = recent.Recorder(cache, project / "envtool.toml", environ)
    r.sign(recipes(project), list(names))
    return r.record({n: DIGEST for n in names})


def test_copy_sources_follow_the_recipes_an_image_builds_on(project):
    assert recent.copy_sources(recipes(project), "app") == ["app", "extra.txt"]
    assert recent.copy_sources(recipes(project), "base") == []


def test_a_recorded_build_is_found_while_nothing_changed(project, tmp_path):
    cache = tmp_path / "cache"
    assert recent.lookup(cache, project / "envtool.toml", "app", {}) is None
    assert record(project, cache, {})
    assert recent.lookup(cache, project / "envtool.toml", "app", {}) == DIGEST
    assert recent.lookup(cache, project / "envtool.toml", "base", {}) is None     # not recorded


@pytest.mark.parametrize("change", [
    "edit a copied file, same size and mtime",
    "add a file to a copied directory",
    "remove a copied file",
    "chmod a copied directory",
    "edit the project file",
    "write a lock",
    "write .env",
    "write an ignore file",
])
def test_any_input_change_makes_the_record_stale(project, tmp_path, change):
    cache = tmp_path / "cache"
    assert record(project, cache, {})
    main = project / "app" / "main.py"
    if change.startswith("edit a copied"):
        st = main.stat()
        main.write_text("print('two')\n")
        os.utime(main, ns=(st.st_atime_ns, st.st_mtime_ns))   # only ctime and inode data tell
    elif change.startswith("add"):
        (project / "app" / "sub" / "new.py").write_text("")
    elif change.startswith("chmod"):
        os.chmod(project / "app" / "sub", 0o700)
    elif change.startswith("remove"):
        (project / "extra.txt").unlink()
    elif change == "edit the project file":
        (project / "envtool.toml").write_text(TOML.replace("hi", "ho"))
    elif change == "write a lock":
        (project / "envtool.lock").write_text("version = 1\n")
    elif change == "write .env":
        (project / ".env").write_text("GREETING=yo\n")
    else:
        (project / ".envtoolignore").write_text("*.pyc\n")
    assert recent.lookup(cache, project / "envtool.toml", "app", {}) is None


def test_an_ignored_file_is_not_an_input(project, tmp_path):
    (project / ".envtoolignore").write_text("*.log\n")
    cache = tmp_path / "cache"
    assert record(project, cache, {})
    (project / "app" / "debug.log").write_text("noise\n")
    assert recent.lookup(cache, project / "envtool.toml", "app", {}) == DIGEST


def test_variables_the_file_names_and_build_settings_are_inputs(project, tmp_path):
    cache = tmp_path / "cache"
    assert record(project, cache, {"HOME": "/root"})
    path = project / "envtool.toml"
    assert recent.lookup(cache, path, "app", {"HOME": "/elsewhere"}) == DIGEST     # not named
    assert recent.lookup(cache, path, "app", {"GREETING": "yo"}) is None
    assert recent.lookup(cache, path, "app", {"SOURCE_DATE_EPOCH": "1"}) is None
    assert recent.lookup(cache, path, "app", {"ENVTOOL_DEBIAN_MIRROR": "http://127.0.0.1/"}) is None


def test_a_dollar_written_as_a_toml_escape_is_not_fingerprinted(project):
    (project / "envtool.toml").write_text(TOML + '\n[services.s]\nimage = "app"\ncommand = ["\\u0024{X}"]\n')
    assert recent.fingerprint(project / "envtool.toml", {}) is None


def test_nothing_is_recorded_when_an_input_moved_during_the_build(project, tmp_path):
    cache = tmp_path / "cache"
    r = recent.Recorder(cache, project / "envtool.toml", {})
    r.sign(recipes(project), ["app"])
    (project / "app" / "main.py").write_text("print('during the build')\n")
    assert not r.record({"app": DIGEST})
    r = recent.Recorder(cache, project / "envtool.toml", {})
    r.sign(recipes(project), ["app"])
    (project / "envtool.toml").write_text(TOML + "\n")
    assert not r.record({"app": DIGEST})
    assert recent.lookup(cache, project / "envtool.toml", "app", {}) is None


def test_the_lock_the_build_writes_is_part_of_the_record(project, tmp_path):
    cache = tmp_path / "cache"
    r = recent.Recorder(cache, project / "envtool.toml", {})
    r.sign(recipes(project), ["app"])
    (project / "envtool.lock").write_text("version = 1\n")        # what a first locked build does
    assert r.record({"app": DIGEST})
    assert recent.lookup(cache, project / "envtool.toml", "app", {}) == DIGEST


def test_files_younger_than_the_clock_can_tell_apart_are_not_recorded(project, tmp_path, monkeypatch):
    monkeypatch.setattr(recent, "RACY_NS", 2_000_000_000)
    cache = tmp_path / "cache"
    assert not record(project, cache, {})                        # everything was written just now
    past = time.time_ns() - 10_000_000_000
    monkeypatch.setattr(recent.time, "time_ns", lambda: past + 20_000_000_000)
    assert record(project, cache, {})


def test_a_recorder_finds_the_record_only_for_the_bytes_it_saw(project, tmp_path):
    cache = tmp_path / "cache"
    assert record(project, cache, {})
    r = recent.Recorder(cache, project / "envtool.toml", {})          # made before the caller's load
    assert r.lookup(["app"]) == {"app": DIGEST}
    assert r.lookup(["app", "base"]) is None                           # all or nothing
    (project / "envtool.toml").write_text(TOML + "\n")                 # changed after the load began
    assert r.lookup(["app"]) is None
