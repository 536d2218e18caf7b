"""Start-first replacement: a 2-replica web service behind one published port is changed,
restarted, scaled and rolled back while an impatient client hits the port every 20 ms with a 1 s
timeout; not one request may fail."""

import json
import time
from pathlib import Path

import pytest

from .conftest import free_port, http_get
from .test_stack import Hammer

pytestmark = pytest.mark.root

# a web app as people write them: no init, no healthcheck, PID 1 with no SIGTERM handler, a second
# of start-up before it accepts; it answers with its version and its hostname
APP = ("import http.server, os, socket, time\n"
       "time.sleep(float(os.environ.get('BOOT', '1.0')))\n"
       "if os.environ.get('CRASH'): raise SystemExit('broken release: ' + os.environ['CRASH'])\n"
       "class H(http.server.BaseHTTPRequestHandler):\n"
       "    def do_GET(self):\n"
       "        body = (os.environ.get('VERSION', '?') + ' ' + socket.gethostname()).encode()\n"
       "        self.send_response(200); self.send_header('Content-Length', str(len(body)))\n"
       "        self.end_headers(); self.wfile.write(body)\n"
       "    def log_message(self, *a): pass\n"
       "http.server.ThreadingHTTPServer(('', 8000), H).serve_forever()\n")


def web(port: int, version: str, replicas: int = 2, extra: str = "") -> str:
    return f"""
[services.web]
image = "py"
command = ["python3", "/app/app.py"]
volumes = ["./app.py:/app/app.py:ro"]
ports = ["{port}:8000"]
replicas = {replicas}
environment = {{ VERSION = "{version}" }}
{extra}
"""


def wait_serving(port: int, within: float = 20.0) -> str:
    deadline = time.monotonic() + within
    while True:
        try:
            return http_get(port, timeout=1.0)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def up_serving(stack) -> int:
    """The 2-replica web service at v1, up and answering; returns its published port.  Both replicas
    must answer: `up -d` returns before they listen, and until the first of them accepts, the port
    goes to every running replica (as Compose's would), so a client can meet one still starting."""
    port = free_port()
    (stack.dir / "app.py").write_text(APP)
    stack.write(web(port, "v1"))
    stack.cli("up", "-d", check=True)
    deadline = time.monotonic() + 30
    seen: set[str] = set()
    while len(seen) < 2:
        seen.add(wait_serving(port).split()[-1])
        assert time.monotonic() < deadline, f"only {seen} answered"
        time.sleep(0.02)
    time.sleep(0.3)                       # and the supervisor has seen both accept (its probe's period)
    return port


def versions(h: Hammer) -> set[str]:
    return {who.split()[0] for who in h.seen}


def test_change_restart_and_scale_without_a_failed_request(stack):
    port = up_serving(stack)
    with Hammer(port) as h:
        time.sleep(1.0)
        stack.write(web(port, "v2"))
        up = stack.cli("up", "-d", check=True)          # both replicas replaced, one at a time
        assert "recreate" in up.stderr + up.stdout and "start-first" in up.stderr + up.stdout
        assert http_get(port).startswith("v2 "), "up returned before the new containers served"
        time.sleep(0.5)
        before = {r["instance"] for r in stack.ps().values()}
        stack.cli("restart", "web", check=True)
        after = {r["instance"] for r in stack.ps().values()}
        assert before.isdisjoint(after), (before, after)   # new instances, not restarts in place
        stack.cli("scale", "web=3", check=True)
        time.sleep(0.5)
        stack.cli("scale", "web=1", check=True)         # web-1 becomes "web" (hostname): a replacement
        time.sleep(0.5)
    assert h.failures == [], (h.failures[:5], stack.supervisor_log())
    assert versions(h) == {"v1", "v2"}
    rows = stack.ps()
    assert list(rows) == [f"{stack.name}-web-1"] and rows[f"{stack.name}-web-1"]["status"] == "running"
    assert http_get(port) == "v2 web"
    containers = Path(stack.env["ENVTOOL_ROOT"]) / "containers"
    assert sorted(p.name for p in containers.iterdir() if p.name.startswith(stack.name)) == \
        [rows[f"{stack.name}-web-1"]["instance"]], "a replaced instance left its state dir behind"


def test_a_broken_change_is_rolled_back_while_the_old_containers_serve(stack):
    port = up_serving(stack)
    with Hammer(port) as h:
        time.sleep(0.5)
        stack.write(web(port, "v2").replace('VERSION = "v2"', 'VERSION = "v2", CRASH = "no config"'))
        t0 = time.monotonic()
        up = stack.cli("up", "-d")
        took = time.monotonic() - t0
        time.sleep(0.5)
    assert up.returncode != 0
    assert "web" in up.stderr and "rolled back" in up.stderr, up.stderr
    assert "exited with code 1" in up.stderr, up.stderr
    assert took < 15, took
    assert h.failures == [], (h.failures[:5], stack.supervisor_log())
    assert versions(h) == {"v1"}
    rows = stack.ps()
    assert sorted(r["status"] for r in rows.values()) == ["running", "running"]
    assert http_get(port).startswith("v1 ")


def test_not_ready_within_monitor_pauses_when_asked(stack):
    port = up_serving(stack)
    slow = web(port, "v2", extra='[services.web.update]\nmonitor = "2s"\nfailure_action = "pause"\n')
    stack.write(slow.replace('VERSION = "v2"', 'VERSION = "v2", BOOT = "30"'))
    up = stack.cli("up", "-d")
    assert up.returncode != 0
    assert "not ready within its monitor period (2s)" in up.stderr and "paused with 0 of 2" in up.stderr, up.stderr
    assert http_get(port).startswith("v1 ")
    assert len(stack.ps()) == 2


def test_a_service_writing_a_named_volume_is_replaced_stop_first_and_says_why(stack):
    def db(version: str) -> str:
        return f"""
[services.db]
image = "py"
command = ["python3", "-c", "import time; time.sleep(600)"]
volumes = ["data:/data"]
environment = {{ V = "{version}" }}
[volumes.data]
"""
    stack.write(db("1"))
    stack.cli("up", "-d", check=True)
    stack.write(db("2"))
    up = stack.cli("up", "-d", check=True)
    out = up.stdout + up.stderr
    assert "stop-first: it writes volume 'data'" in out, out
    assert [r["status"] for r in stack.ps().values()] == ["running"]


def test_release_upgrade_and_rollback_without_a_failed_request(stack):
    port = free_port()
    (stack.dir / "app.py").write_text(APP)

    def release(version: str) -> None:
        stack.write(web(port, "dev") + f'\n[environments.production.services.web]\nenvironment = {{ VERSION = "{version}" }}\n')

    release("r1")
    stack.cli("lock", check=True, timeout=600)
    nothing = stack.cli("rollback")
    assert nothing.returncode == 1 and "nothing to roll back from" in nothing.stderr, nothing.stderr
    stack.cli("up", "-d", "--env", "production", check=True)
    wait_serving(port)
    first = json.loads(stack.cli("releases", "--json", check=True).stdout)["current"]["release"]
    alone = stack.cli("rollback")
    assert alone.returncode == 1 and "nothing to roll back to" in alone.stderr, alone.stderr
    with Hammer(port) as h:
        time.sleep(0.5)
        release("r2")
        stack.cli("up", "-d", "--env", "production", check=True)          # the upgrade
        assert http_get(port).startswith("r2 ")
        out = json.loads(stack.cli("releases", "--json", check=True).stdout)
        assert out["rollback"]["release"] == first and out["current"]["release"] != first
        back = stack.cli("rollback", "--json", check=True)                # and back
        assert json.loads(back.stdout)["release"] == first
        assert http_get(port).startswith("r1 ")
        time.sleep(0.5)
    assert h.failures == [], (h.failures[:5], stack.supervisor_log())
    assert versions(h) == {"r1", "r2"}
    out = json.loads(stack.cli("releases", "--json", check=True).stdout)
    assert out["current"]["release"] == first
    assert [d["source"].split(":")[0] for d in out["deployments"]][-3:] == ["project", "project", "rollback"]


# a front that resolves its upstream once, at start, as nginx does for `upstream { server web:8000; }`
FRONT = ("import http.server, socket, urllib.request\n"
         "upstream = socket.gethostbyname('web')\n"
         "class H(http.server.BaseHTTPRequestHandler):\n"
         "    def do_GET(self):\n"
         "        try:\n"
         "            body = urllib.request.urlopen(f'http://{upstream}:8000/', timeout=2).read()\n"
         "            self.send_response(200)\n"
         "        except OSError as e:\n"
         "            body = repr(e).encode(); self.send_response(502)\n"
         "        self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)\n"
         "    def log_message(self, *a): pass\n"
         "http.server.ThreadingHTTPServer(('', 8080), H).serve_forever()\n")


def test_a_client_that_resolved_the_service_once_keeps_reaching_it_across_replacements(stack):
    port = free_port()
    (stack.dir / "app.py").write_text(APP)
    (stack.dir / "front.py").write_text(FRONT)

    def write(version: str) -> None:
        stack.write(f"""
[services.web]
image = "py"
command = ["python3", "/app/app.py"]
volumes = ["./app.py:/app/app.py:ro"]
environment = {{ VERSION = "{version}", BOOT = "0.3" }}
[services.front]
image = "py"
command = ["python3", "/app/front.py"]
volumes = ["./front.py:/app/front.py:ro"]
ports = ["{port}:8080"]
depends_on = ["web"]
""")
    write("v1")
    stack.cli("up", "-d", check=True)
    deadline = time.monotonic() + 20
    while not wait_serving(port).startswith("v1 ") and time.monotonic() < deadline:
        time.sleep(0.1)                                  # the front may start before web accepts
    resolve = ["exec", "front", "python3", "-c", "import socket; print(socket.gethostbyname('web'))"]
    slot_address = stack.cli(*resolve, check=True).stdout.strip()
    with Hammer(port) as h:
        time.sleep(0.5)
        stack.cli("restart", "web", check=True)
        write("v2")
        stack.cli("up", "-d", check=True)
        assert http_get(port).startswith("v2 ")          # through the address the front resolved once
        stack.cli("restart", "web", check=True)
        time.sleep(0.5)
    failed = [w for w in h.seen if not w.startswith(("v1 ", "v2 "))]
    assert h.failures == [] and failed == [], (h.failures[:5], failed[:5], stack.supervisor_log())
    assert stack.cli(*resolve, check=True).stdout.strip() == slot_address
    web = stack.ps()[f"{stack.name}-web-1"]
    assert web["instance"] != f"{stack.name}-web-1" and web["ip"] != slot_address   # it has its own too
