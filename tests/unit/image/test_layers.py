"""Deterministic layers and the recipe plan."""

import io
import os
import tarfile
import time

from envtool._util.digest import sha256_bytes
from envtool._util.ignore import read_patterns
from envtool.image.layer import LayerWriter, Owner, add_copy
from envtool.image.recipe import Copy, plan_recipe, step_key
from envtool.spec.model import ImageRecipe


def layer_bytes(src, dst="/app", epoch=0, patterns=()):
    w = LayerWriter(epoch)
    add_copy(w, str(src), dst, Owner(), None, list(patterns))
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def make_tree(root):
    (root / "b").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "b" / "c.py").write_text("print(1)")
    os.symlink("a.txt", root / "link")


def test_same_tree_same_digest_regardless_of_mtime_and_creation_order(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    make_tree(one)
    (two / "b").mkdir(parents=True)
    (two / "b" / "c.py").write_text("print(1)")
    os.symlink("a.txt", two / "link")
    time.sleep(0.01)
    (two / "a.txt").write_text("a")
    os.utime(two / "a.txt", (1, 1))
    assert sha256_bytes(layer_bytes(one)) == sha256_bytes(layer_bytes(two))


def test_layer_entries_are_sorted_and_normalised(tmp_path):
    make_tree(tmp_path / "src")
    with tarfile.open(fileobj=io.BytesIO(layer_bytes(tmp_path / "src", epoch=42))) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == ["app", "app/a.txt", "app/b", "app/b/c.py", "app/link"]
    assert {m.mtime for m in members} == {42}
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}


def test_content_change_changes_digest(tmp_path):
    make_tree(tmp_path / "src")
    before = sha256_bytes(layer_bytes(tmp_path / "src"))
    (tmp_path / "src" / "a.txt").write_text("b")
    assert sha256_bytes(layer_bytes(tmp_path / "src")) != before


def test_envtoolignore(tmp_path):
    make_tree(tmp_path / "src")
    (tmp_path / "src" / "x.pyc").write_text("")
    (tmp_path / ".envtoolignore").write_text("*.pyc\nb/\n")
    patterns = read_patterns(str(tmp_path))
    with tarfile.open(fileobj=io.BytesIO(layer_bytes(tmp_path / "src", patterns=patterns))) as tar:
        assert tar.getnames() == ["app", "app/a.txt", "app/link"]


def test_recipe_plan_orders_pip_copy_run():
    r = ImageRecipe.model_validate({"from": "debian:bookworm", "packages": ["python3-pip", "python3"],
                                    "pip": ["flask==3.0.0"], "copy": [{"src": "app", "dst": "/app"}],
                                    "run": ["useradd app"], "cmd": ["python3"]})
    plan = plan_recipe("web", r)
    assert plan.base.packages == ("python3", "python3-pip")
    assert [s.describe() for s in plan.steps] == ["pip install flask==3.0.0", "copy app → /app", "run useradd app"]


def test_step_keys_chain():
    a = step_key("", Copy("x", "/y"), "sha256:1")
    assert a == step_key("", Copy("x", "/y"), "sha256:1")
    assert a != step_key("", Copy("x", "/y"), "sha256:2")
    assert step_key(a, Copy("x", "/y")) != step_key("other", Copy("x", "/y"))


def test_copy_anchors_patterns_at_the_project_root_as_the_watcher_does(tmp_path):
    """`/dist` leaves out the project's dist/, not web/dist/ — whatever the copy's source."""
    for d in ("dist", "web/dist"):
        (tmp_path / d).mkdir(parents=True)
        (tmp_path / d / "app.js").write_text("x")
    (tmp_path / ".envtoolignore").write_text("/dist\n")
    patterns = read_patterns(str(tmp_path))

    def names(src):
        w = LayerWriter(0)
        add_copy(w, str(tmp_path / src), "/app", Owner(), None, patterns, base=str(tmp_path))
        buf = io.BytesIO()
        w.write(buf)
        with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tar:
            return tar.getnames()

    assert "app/dist/app.js" not in names(".") and "app/web/dist/app.js" in names(".")
    assert "app/dist/app.js" in names("web")            # web/dist is not the root's dist
