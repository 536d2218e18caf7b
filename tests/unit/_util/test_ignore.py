"""The one `.envtoolignore` rule set, shared by `copy` and the watcher."""

from envtool._util.ignore import ALWAYS_IGNORED, ignored, read_patterns


def test_names_anywhere_anchored_paths_and_directories():
    pats = ["*.pyc", "__pycache__/", "/dist", "docs/*.md", "node_modules"]
    assert ignored("a/b/x.pyc", pats)
    assert ignored("pkg/__pycache__/m.cpython-311.pyc", pats)
    assert ignored("dist/app.js", pats) and not ignored("web/dist/app.js", pats)     # anchored
    assert ignored("docs/a.md", pats) and not ignored("docs/sub/a.md", pats) and not ignored("x/docs/a.md", pats)
    assert ignored("web/node_modules/react/index.js", pats)
    assert not ignored("src/main.py", pats) and not ignored(".", pats)


def test_negation_last_match_wins():
    pats = ["*.log", "!keep.log"]
    assert ignored("a.log", pats) and not ignored("keep.log", pats) and not ignored("sub/keep.log", pats)


def test_envtoolignore_first_dockerignore_otherwise_never_gitignore(tmp_path):
    (tmp_path / ".gitignore").write_text("dist/\n")
    assert read_patterns(str(tmp_path)) == list(ALWAYS_IGNORED)
    (tmp_path / ".dockerignore").write_text("*.tmp\n")
    assert read_patterns(str(tmp_path))[-1] == "*.tmp"
    (tmp_path / ".envtoolignore").write_text("# only mine\nbuild/\n")
    pats = read_patterns(str(tmp_path))
    assert "*.tmp" not in pats and "build/" in pats
    assert ignored(".git/HEAD", pats) and ignored("envtool.lock", pats) and not ignored("sub/envtool.lock", pats)


def test_double_star_spans_directories():
    assert ignored("docs/a/b/c.md", ["docs/**/*.md"]) and ignored("docs/c.md", ["docs/**/*.md"])
    assert not ignored("src/c.md", ["docs/**/*.md"])
