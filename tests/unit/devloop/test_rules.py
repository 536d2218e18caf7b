import os

from envtool._util.ignore import ignored
from envtool.devloop.rules import Rule, initial, plan
from envtool.devloop.watch import initial_files


def rules(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "static").mkdir()
    (tmp_path / "requirements.txt").write_text("")
    return [Rule("web", str(tmp_path / "app"), "sync+restart", "/app", ("*.pyc",)),
            Rule("web", str(tmp_path / "static"), "sync", "/srv/static"),
            Rule("worker", str(tmp_path / "app"), "sync+exec", "/app", (), ("touch", "/tmp/reload")),
            Rule("api", str(tmp_path / "requirements.txt"), "rebuild")]


def test_a_burst_becomes_one_batch_per_service(tmp_path):
    rs = rules(tmp_path)
    changes = [("modified", str(tmp_path / "app" / f"m{i}.py")) for i in range(500)]
    changes += [("deleted", str(tmp_path / "app" / "gone.py")), ("added", str(tmp_path / "app" / "x.pyc"))]
    batches = {b.service: b for b in plan(changes, rs, str(tmp_path), [])}
    assert set(batches) == {"web", "worker"}
    web = batches["web"]
    assert web.restart and len(web.files) == 501 and "/app/gone.py" in web.files
    assert "/app/x.pyc" not in web.files                     # the rule's ignore
    assert batches["worker"].exec == [("touch", "/tmp/reload")] and not batches["worker"].restart


def test_file_rule_and_rebuild_supersedes(tmp_path):
    rs = rules(tmp_path) + [Rule("api", str(tmp_path / "app"), "sync+restart", "/app")]
    batches = {b.service: b for b in plan([("modified", str(tmp_path / "requirements.txt")),
                                           ("modified", str(tmp_path / "app" / "a.py"))], rs, str(tmp_path), [])}
    assert batches["api"].rebuild and not batches["api"].files and not batches["api"].restart


def test_project_ignore_files_apply(tmp_path):
    rs = rules(tmp_path)
    (tmp_path / ".envtoolignore").write_text("build/\n*.log\n")
    from envtool._util.ignore import read_patterns

    pats = read_patterns(str(tmp_path))
    got = plan([("added", str(tmp_path / "app" / "build" / "x.py")), ("added", str(tmp_path / "app" / "y.log")),
                ("added", str(tmp_path / "app" / "ok.py"))], rs, str(tmp_path), pats)
    assert {b.service: sorted(b.files) for b in got}["web"] == ["/app/ok.py"]


def test_unrelated_paths_do_nothing(tmp_path):
    assert plan([("modified", str(tmp_path / "README"))], rules(tmp_path), str(tmp_path), []) == []


def test_ignored_patterns():
    assert ignored("a/b/c.pyc", ["*.pyc"]) and ignored("node_modules/x/y.js", ["node_modules/"])
    assert ignored("dist/a", ["/dist"]) and not ignored("src/dist/a", ["/dist"])
    assert ignored("docs/a.md", ["docs/*.md"]) and not ignored("a.py", ["#*.py", ""])


def test_initial_sync_lists_every_file_without_restart(tmp_path):
    rs = rules(tmp_path)
    (tmp_path / "static" / "a.css").write_text("")
    os.makedirs(tmp_path / "static" / "img")
    (tmp_path / "static" / "img" / "b.png").write_text("")
    rs = [Rule(r.service, r.path, r.action, r.target, r.ignore, r.exec, initial_sync=(r.target == "/srv/static"))
          for r in rs]
    [b] = initial(initial_files(rs), rs, str(tmp_path), [])
    assert b.service == "web" and sorted(b.files) == ["/srv/static/a.css", "/srv/static/img/b.png"]
    assert not b.restart
