"""stack/recent.py: the stack the last `up` resolved is taken again only while the key (project
file fingerprint, environment, image digests) and every fact about other files it read hold."""

import os

import pytest

from envtool.spec.load import load
from envtool.stack import recent

TOML = """[project]
name = "demo"

[images.py]
from = "debian:bookworm"

[services.web]
image = "py"
env_file = ["web.env"]
volumes = ["./src:/src"]

[services.web.develop]
watch = [{ path = "src", action = "sync", target = "/src" }]
"""

STACK = {"project": "demo", "directory": "/p", "containers": []}
IMAGES = {"py": "sha256:" + "ab" * 32}


@pytest.fixture
def project(tmp_path):
    p = tmp_path / "proj"
    (p / "src").mkdir(parents=True)
    (p / "web.env").write_text("A=1\n")
    (p / "envtool.toml").write_text(TOML)
    return p


def keep(project, cache):
    loaded = load(project / "envtool.toml", environ={})
    recent.record(cache, project / "envtool.toml", "fp", None, IMAGES, STACK, ["a warning"],
                  recent.facts(loaded.project, project))


def test_the_kept_stack_comes_back_with_its_warnings(project, tmp_path):
    cache = tmp_path / "cache"
    assert recent.lookup(cache, project / "envtool.toml", "fp", None, IMAGES) is None
    keep(project, cache)
    assert recent.recipe_names(cache, project / "envtool.toml") == ["py"]
    assert recent.lookup(cache, project / "envtool.toml", "fp", None, IMAGES) == {
        "stack": STACK, "warnings": ["a warning"]}


@pytest.mark.parametrize("change", ["fingerprint", "env", "image", "no image", "env_file", "watch path",
                                    "bind symlink", "HOME"])
def test_any_input_change_refuses_the_kept_stack(project, tmp_path, change, monkeypatch):
    cache = tmp_path / "cache"
    keep(project, cache)
    fp, env, images = "fp", None, dict(IMAGES)
    if change == "fingerprint":
        fp = "other"
    elif change == "env":
        env = "staging"
    elif change == "image":
        images["py"] = "sha256:" + "cd" * 32
    elif change == "no image":
        images = None
    elif change == "env_file":
        (project / "web.env").write_text("A=2\n")
    elif change == "watch path":
        (project / "src").rename(project / "gone")
    elif change == "HOME":                     # what `~` in a bind source or a secret's file means
        monkeypatch.setenv("HOME", str(tmp_path / "another-home"))
    else:
        (project / "src").rename(project / "real")
        os.symlink(project / "real", project / "src")
    assert recent.lookup(cache, project / "envtool.toml", fp, env, images) is None
