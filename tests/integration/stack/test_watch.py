"""Hot reload on real stacks: sync, restart, exec, rebuild, batching, ownership, the detached
watcher's lifetime, and a large tree."""

import os
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.root


def wait_for(fn, timeout=15.0, every=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(every)
    pytest.fail("condition not met in time")


def watch_lines(stack):
    proc = stack.cli("logs", "watch")
    return [line for line in proc.stdout.splitlines() if "[watch]" in line] if proc.returncode == 0 else []


def test_sync_restart_batches_and_keeps_ownership(stack):
    app = stack.dir / "app"
    app.mkdir()
    (app / "msg.txt").write_text("v1\n")
    stack.write("""
[services.s]
image = "py"
command = ["sh", "-c", "cat /app/msg.txt; sleep 600"]
init = true
user = "65534"
[services.s.develop]
watch = [{ path = "app", action = "sync+restart", target = "/app", initial_sync = true }]
""")
    stack.cli("up", "-d", "--watch", check=True)
    wait_for(lambda: "initial sync" in " ".join(watch_lines(stack)))
    assert stack.cli("exec", "s", "cat", "/app/msg.txt", check=True).stdout == "v1\n"
    (app / "msg.txt").write_text("v2\n")
    wait_for(lambda: "v2" in stack.cli("logs", "s").stdout)
    assert stack.ps()[f"{stack.name}-s-1"]["restarts"] == 0       # a restart by the watcher is not a crash
    (app / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(app / "run.sh", 0o755)
    wait_for(lambda: stack.cli("exec", "s", "test", "-f", "/app/run.sh").returncode == 0)
    out = stack.cli("exec", "s", "stat", "-c", "%u %a", "/app/run.sh", check=True).stdout.split()
    assert out == ["65534", "755"]
    (app / "run.sh").unlink()
    wait_for(lambda: stack.cli("exec", "s", "test", "-e", "/app/run.sh").returncode == 1)


def test_a_detached_watcher_started_from_the_project_directory_acts_on_its_stack(stack):
    """`cd project && envtool up -d --watch`, no -C: the watcher runs detached in "/", and must
    still find its stack (it once said "the stack is not running" to every change)."""
    app = stack.dir / "app"
    app.mkdir()
    (app / "msg.txt").write_text("v1\n")
    stack.write('[services.s]\nimage = "py"\ncommand = ["sh", "-c", "cat /app/msg.txt; sleep 600"]\ninit = true\n'
                '[services.s.develop]\nwatch = [{ path = "app", action = "sync+restart", target = "/app" }]\n')
    proc = subprocess.run([sys.executable, "-m", "envtool", "up", "-d", "--watch"], cwd=stack.dir, env=stack.env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    (app / "msg.txt").write_text("v2\n")
    wait_for(lambda: "v2" in stack.cli("logs", "s").stdout)
    assert not [line for line in watch_lines(stack) if "not running" in line]


def test_git_checkout_of_hundreds_of_files_restarts_once(stack):
    app = stack.dir / "app"
    app.mkdir()
    git = ["git", "-C", str(app), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    for i in range(400):
        (app / f"m{i}.py").write_text(f"x = {i}\n")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "main"], check=True)
    subprocess.run([*git, "checkout", "-qb", "other"], check=True)
    for i in range(400):
        (app / f"m{i}.py").write_text(f"x = {i + 1}\n")
    subprocess.run([*git, "commit", "-qam", "other"], check=True)
    subprocess.run([*git, "checkout", "-q", "main"], check=True)
    stack.write('[services.s]\nimage = "py"\ncommand = ["sleep", "600"]\ninit = true\n'
                '[services.s.develop]\nwatch = [{ path = "app", action = "sync+restart", target = "/app", '
                'ignore = [".git/"] }]\n')
    stack.cli("up", "-d", "--watch", check=True)
    subprocess.run([*git, "checkout", "-q", "other"], check=True)
    wait_for(lambda: any("restarted" in line for line in watch_lines(stack)))
    time.sleep(1.5)
    restarts = [line for line in watch_lines(stack) if "restarted" in line]
    assert len(restarts) == 1, restarts
    assert "synced 400 files" in restarts[0]
    assert stack.cli("exec", "s", "cat", "/app/m7.py", check=True).stdout == "x = 8\n"


def test_down_stops_the_detached_watcher(stack):
    (stack.dir / "app").mkdir()
    stack.write('[services.s]\nimage = "py"\ncommand = ["sleep", "600"]\ninit = true\n'
                '[services.s.develop]\nwatch = [{ path = "app", action = "sync", target = "/app" }]\n')
    stack.cli("up", "-d", "--watch", check=True)
    pid_file = __import__("pathlib").Path(stack.env["ENVTOOL_ROOT"]) / "projects" / stack.name / "watch.pid"
    pid = int(pid_file.read_text().split()[0])
    assert os.path.exists(f"/proc/{pid}")
    stack.cli("down", check=True)
    def gone():
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().split()[2] == "Z"
        except FileNotFoundError:
            return True

    wait_for(gone)


def test_sync_exec_and_attached_watch(stack):
    (stack.dir / "conf").mkdir()
    (stack.dir / "conf" / "a.conf").write_text("x=1\n")
    stack.write('[services.s]\nimage = "py"\ncommand = ["sleep", "600"]\ninit = true\n'
                '[services.s.develop]\nwatch = [{ path = "conf", action = "sync+exec", target = "/etc/app", '
                'exec = ["sh", "-c", "cat /etc/app/a.conf > /tmp/reloaded"] }]\n')
    stack.cli("up", "-d", check=True)
    p = subprocess.Popen([sys.executable, "-m", "envtool", "-C", str(stack.dir), "watch"], env=stack.env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stderr.readline().startswith("watching ")

        def edited_and_reloaded():           # rewrite until the watcher, just starting, has seen it
            (stack.dir / "conf" / "a.conf").write_text("x=2\n")
            return stack.cli("exec", "s", "cat", "/tmp/reloaded").stdout == "x=2\n"

        wait_for(edited_and_reloaded, every=0.3)
    finally:
        p.terminate()
        _, err = p.communicate(timeout=10)
    assert "[watch] s: synced 1 file, ran sh -c cat /etc/app/a.conf > /tmp/reloaded (exit 0)" in err


def test_rebuild_recreates_the_service_with_the_new_image(stack):
    (stack.dir / "src").mkdir()
    (stack.dir / "src" / "v.txt").write_text("one\n")
    stack.write('[services.s]\nimage = "app"\ncommand = ["sh", "-c", "cat /src/v.txt; sleep 600"]\ninit = true\n'
                '[services.s.develop]\nwatch = [{ path = "src", action = "rebuild" }]\n',
                recipe='[images.py]\nfrom = "debian:bookworm"\npackages = ["python3"]\n'
                       '[images.app]\nfrom = "image:py"\ncopy = [{ src = "src", dst = "/src" }]\n')
    stack.cli("up", "-d", "--watch", check=True)
    first = stack.ps()[f"{stack.name}-s-1"]
    (stack.dir / "src" / "v.txt").write_text("two\n")
    wait_for(lambda: "two" in stack.cli("logs", "s").stdout, timeout=30)
    after = stack.ps()[f"{stack.name}-s-1"]
    assert after["image"] != first["image"] and after["pid"] != first["pid"]


def test_a_large_tree_is_watched_without_spinning(tmp_path):
    """50,000 files in 500 directories: inotify watches are per directory, and an idle watcher
    sleeps in the kernel (measured as CPU time over 2 s)."""
    from envtool.devloop.rules import Rule
    from envtool.devloop.watch import Watcher

    root = tmp_path / "big"
    for d in range(500):
        sub = root / f"d{d}"
        sub.mkdir(parents=True)
        for f in range(100):
            (sub / f"f{f}").write_bytes(b"")

    class Hooks:
        logs: list[str] = []

        def replicas(self, service):
            return []

        def restart(self, service):
            pass

        def rebuild(self, service):
            pass

        def exec(self, service, argv):
            return 0

        def log(self, text):
            self.logs.append(text)

    w = Watcher([Rule("s", str(root), "restart")], str(tmp_path), Hooks())
    seen = []
    w.handle = lambda changes: seen.append(list(changes))          # record batches instead of acting
    t_end = time.monotonic() + 2.5
    cpu0 = time.process_time()

    def touch_once():                                              # called once the watches are set
        if not (root / "d7" / "f7").read_text():
            (root / "d7" / "f7").write_text("x")

    w.run(poll=touch_once, should_stop=lambda: time.monotonic() > t_end)
    cpu = time.process_time() - cpu0
    assert any(p.endswith("d7/f7") for batch in seen for _, p in batch)
    assert cpu < 1.5, f"the watcher used {cpu:.2f} s of CPU in 2.5 s"


def test_rebuild_after_adding_a_package_updates_the_lock_and_the_service(stack):
    import tomllib

    recipe = ('[images.app]\nfrom = "debian:bookworm"\nvariant = "extract"\npackages = ["busybox-static"]\n')
    body = ('[services.s]\nimage = "app"\ncommand = ["/bin/busybox", "sh", "-c", '
            '"/bin/busybox ls /usr/bin; /bin/busybox sleep 600"]\ninit = true\n'
            '[services.s.develop]\nwatch = [{ path = "envtool.toml", action = "rebuild" }]\n')
    stack.write(body, recipe=recipe)
    stack.cli("up", "-d", "--watch", check=True)
    before = tomllib.loads((stack.dir / "envtool.lock").read_text())["images"]["app"]
    assert "hello" not in stack.cli("logs", "s").stdout
    stack.write(body, recipe=recipe.replace('["busybox-static"]', '["busybox-static", "hello"]'))
    wait_for(lambda: "hello" in stack.cli("logs", "s").stdout.split(), timeout=60)
    after = tomllib.loads((stack.dir / "envtool.lock").read_text())["images"]["app"]
    assert after["recipe"] != before["recipe"] and after["digest"] != before["digest"]
    assert stack.ps()[f"{stack.name}-s-1"]["image"] == after["digest"]
    assert "envtool.lock entry updated" in " ".join(watch_lines(stack))
