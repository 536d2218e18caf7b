"""`envtool deploy` for real: two "hosts" are network namespaces, each with its own sshd (Debian's
openssh-server, started by the test on 127.0.0.1 inside that netns) and its own envtool root.  The
laptop (the test's store) deploys to staging, upgrades, deploys to production, rolls back, and
reaches each stack on its published port inside its netns.  A second deploy of the same release
sends (nearly) nothing; a one-file change sends one layer.  An unreachable host, a host without
envtool, a refused key and a transfer altered on the way each give one clear error and leave the
host as it was."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root, pytest.mark.slow]
SSHD = "/usr/sbin/sshd"
STAGING_ADDR = "10.251.9.1"
PY = '[images.py]\nfrom = "debian:bookworm"\npackages = ["python3"]\n'
APP = textwrap.dedent("""\
    import http.server, os
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = (open('/app/version').read().strip() + ' ' + os.environ.get('STAGE', '?')).encode()
            self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a): pass
    http.server.ThreadingHTTPServer(('', 8000), H).serve_forever()
    """)
# flips one byte of what it forwards to the host (a transfer altered on the way); the short
# `remote-have` question passes untouched
TAMPER = textwrap.dedent("""\
    import subprocess, sys
    data = bytearray(sys.stdin.buffer.read())
    if len(data) > 4096:
        data[len(data) // 2] ^= 0xFF
    sys.exit(subprocess.run(sys.argv[1:], input=bytes(data)).returncode)
    """)


class Host:
    def __init__(self, base: Path, name: str) -> None:
        self.name = name
        self.ns = f"etd-{uuid.uuid4().hex[:6]}"
        self.dir = base / name
        self.dir.mkdir()
        self.root = Path(tempfile.mkdtemp(prefix=f"envtool-deploy-{name}-", dir="/var/tmp"))
        self.sshd: subprocess.Popen[bytes] | None = None

    def make_ns(self) -> None:
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        subprocess.run(["ip", "-n", self.ns, "link", "set", "lo", "up"], check=True)

    def start(self, pubkey: str, also: str | None = None) -> None:
        if not os.path.exists(f"/run/netns/{self.ns}"):
            self.make_ns()
        key = self.dir / "host_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        (self.dir / "authorized_keys").write_text(pubkey)
        os.chmod(self.dir / "authorized_keys", 0o600)
        (self.dir / "sshd_config").write_text(textwrap.dedent(f"""\
            ListenAddress 127.0.0.1
            {f"ListenAddress {also}" if also else ""}
            Port 2222
            HostKey {key}
            PidFile {self.dir / 'sshd.pid'}
            AuthorizedKeysFile {self.dir / 'authorized_keys'}
            PermitRootLogin prohibit-password
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            UsePAM no
            StrictModes no
            SetEnv ENVTOOL_ROOT={self.root} PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
            """))
        with open(self.dir / "sshd.log", "wb") as log:
            self.sshd = subprocess.Popen([*self.enter, SSHD, "-D", "-e", "-f",
                                          str(self.dir / "sshd_config")], stderr=log)
        self.in_ns([sys.executable, "-c", "import socket, time\nfor _ in range(200):\n    try:\n"
                    "        socket.create_connection(('127.0.0.1', 2222), 1).close(); break\n"
                    "    except OSError: time.sleep(0.05)\n"], check=True)

    @property
    def enter(self) -> list[str]:
        """Into the host's network namespace only (`ip netns exec` would also give it a mount
        namespace with a fresh /sys, without the cgroup mounts envtool needs)."""
        return ["nsenter", f"--net=/run/netns/{self.ns}"]

    def in_ns(self, argv: list[str], **kw) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.enter, *argv], capture_output=True, text=True, **kw)

    def get(self, port: int) -> str:
        code = (f"import urllib.request, time\nfor _ in range(100):\n    try:\n        print(urllib.request.urlopen("
                f"'http://127.0.0.1:{port}/', timeout=2).read().decode()); break\n    except OSError: time.sleep(0.1)\n")
        return self.in_ns([sys.executable, "-c", code], timeout=60).stdout.strip()

    def envtool(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.in_ns([sys.executable, "-m", "envtool", *args], env={**os.environ, "ENVTOOL_ROOT": str(self.root)},
                          timeout=300)

    def stop(self) -> None:
        if self.sshd is not None and self.root.exists():
            for project in (self.root / "projects").glob("*") if (self.root / "projects").is_dir() else []:
                self.envtool("-p", project.name, "down")
        if self.sshd is not None:
            self.sshd.terminate()
            self.sshd.wait(10)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def hosts(tmp_path, leak_check):
    if not os.path.exists(SSHD) or shutil.which("ssh") is None:
        pytest.skip("openssh-server/client are not installed (.ci/setup installs them)")
    made_run_sshd = not os.path.isdir("/run/sshd")
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)          # sshd's privilege separation directory
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    pair = {"staging": Host(tmp_path, "staging"), "production": Host(tmp_path, "production")}
    try:
        for h in pair.values():
            h.make_ns()
        # a cable between the two: from production's netns, staging's sshd is at 10.251.9.1
        subprocess.run(["ip", "link", "add", "etd-a", "netns", pair["staging"].ns, "type", "veth", "peer", "name",
                        "etd-b", "netns", pair["production"].ns], check=True)
        for h, dev, addr in ((pair["staging"], "etd-a", STAGING_ADDR), (pair["production"], "etd-b", "10.251.9.2")):
            subprocess.run(["ip", "-n", h.ns, "addr", "add", f"{addr}/30", "dev", dev], check=True)
            subprocess.run(["ip", "-n", h.ns, "link", "set", dev, "up"], check=True)
        pair["staging"].start((tmp_path / "id.pub").read_text(), also=STAGING_ADDR)
        pair["production"].start((tmp_path / "id.pub").read_text())
        yield pair, key
    finally:
        for h in pair.values():
            h.stop()
        if made_run_sshd:
            shutil.rmtree("/run/sshd", ignore_errors=True)


def deploy(project: Path, host: Host, key: Path, *args: str, ssh_prefix: str = "", remote: str | None = None,
           laptop_root: str) -> subprocess.CompletedProcess[str]:
    ssh = (f"{ssh_prefix}ssh -i {key} -o UserKnownHostsFile={host.dir / 'known_hosts'} "   # both are 127.0.0.1:2222
           "-o StrictHostKeyChecking=accept-new")
    env = {**os.environ, "ENVTOOL_ROOT": laptop_root, "ENVTOOL_SSH": ssh,
           "ENVTOOL_REMOTE": remote or f"{sys.executable} -m envtool", "NO_COLOR": "1"}
    return host.in_ns([sys.executable, "-m", "envtool", "-C", str(project), "deploy", "ssh://root@127.0.0.1:2222",
                       "--json", "--progress", "quiet", *args], env=env, timeout=600)


def test_deploy_upgrade_promote_and_roll_back_over_ssh(hosts, store_root, tmp_path):
    pair, key = hosts
    staging, production = pair["staging"], pair["production"]
    project = tmp_path / "shop"
    (project / "app").mkdir(parents=True)
    (project / "app" / "app.py").write_text(APP)
    (project / "app" / "version").write_text("v1\n")
    (project / "envtool.toml").write_text(PY.replace('packages = ["python3"]\n', 'packages = ["python3"]\ncopy = '
                                                     '[{ src = "app/", dst = "/app" }]\n') + textwrap.dedent("""
        [project]
        name = "deployed"
        [services.web]
        image = "py"
        command = ["python3", "/app/app.py"]
        ports = ["18321:8000"]
        [environments.staging.services.web]
        environment = { STAGE = "staging" }
        [environments.production.services.web]
        environment = { STAGE = "production" }
        replicas = 2
        """))
    lock = subprocess.run([sys.executable, "-m", "envtool", "-C", str(project), "lock"],
                          env={**os.environ, "ENVTOOL_ROOT": store_root}, capture_output=True, text=True, timeout=900)
    assert lock.returncode == 0, lock.stderr

    first = deploy(project, staging, key, "--env", "staging", laptop_root=store_root)
    assert first.returncode == 0, first.stderr
    one = json.loads(first.stdout)
    assert one["blobs_held"] == 0 and one["sent_bytes"] > 1_000_000
    assert staging.get(18321) == "v1 staging"

    again = json.loads(deploy(project, staging, key, "--env", "staging", laptop_root=store_root).stdout)
    assert again["release"] == one["release"] and again["blobs_sent"] == 0 and again["sent_bytes"] < 64 * 1024

    (project / "app" / "version").write_text("v2\n")                   # one file changed: one layer
    assert subprocess.run([sys.executable, "-m", "envtool", "-C", str(project), "lock"],
                          env={**os.environ, "ENVTOOL_ROOT": store_root}, capture_output=True).returncode == 0
    up = deploy(project, staging, key, "--env", "staging", laptop_root=store_root)
    assert up.returncode == 0, up.stderr
    two = json.loads(up.stdout)
    assert two["release"] != one["release"] and two["blobs_sent"] <= 3 and two["sent_bytes"] < one["sent_bytes"] / 10
    assert staging.get(18321) == "v2 staging"

    # promote across hosts: staging's host says what runs there (healthy), that release goes to production
    (project / "envtool.toml").write_text((project / "envtool.toml").read_text() + textwrap.dedent(f"""
        [hosts]
        staging = "ssh://root@{STAGING_ADDR}:2222"
        production = "ssh://root@127.0.0.1:2222"
        """))
    known = tmp_path / "known_hosts"                     # both hosts, each at its own address
    promote = production.in_ns(
        [sys.executable, "-m", "envtool", "-C", str(project), "promote", "--from", "staging", "--to", "production",
         "--json"], timeout=600,
        env={**os.environ, "ENVTOOL_ROOT": store_root, "ENVTOOL_REMOTE": f"{sys.executable} -m envtool",
             "ENVTOOL_SSH": f"ssh -i {key} -o UserKnownHostsFile={known} -o StrictHostKeyChecking=accept-new"})
    assert promote.returncode == 0, promote.stderr
    prod = json.loads(promote.stdout)
    assert prod["release"] == two["release"] and prod["to_host"] == "root@127.0.0.1:2222"
    assert "from_host" in (project / "envtool.releases.toml").read_text()
    assert production.get(18321) == "v2 production"
    rows = json.loads(production.envtool("-p", "deployed", "ps", "--json").stdout)
    assert len(rows) == 2 and all(r["status"] == "running" for r in rows)

    back = staging.envtool("-p", "deployed", "rollback")                 # recorded there: it can go back
    assert back.returncode == 0, back.stderr
    assert staging.get(18321) == "v1 staging"

    # failures: one clear line each, and the host keeps running what it ran
    before = sorted(p.name for p in (production.root / "releases").iterdir())
    (project / "app" / "version").write_text("v3\n")
    subprocess.run([sys.executable, "-m", "envtool", "-C", str(project), "lock"],
                   env={**os.environ, "ENVTOOL_ROOT": store_root}, capture_output=True, check=True)
    tamper = tmp_path / "tamper.py"
    tamper.write_text(TAMPER)
    altered = deploy(project, production, key, "--env", "production", laptop_root=store_root,
                     ssh_prefix=f"{sys.executable} {tamper} ")
    assert altered.returncode != 0, altered.stderr
    assert "the bundle was altered" in altered.stderr or "not a readable bundle" in altered.stderr, altered.stderr
    assert "Traceback" not in altered.stderr and len(altered.stderr.strip().splitlines()) <= 2
    assert production.get(18321) == "v2 production"
    assert sorted(p.name for p in (production.root / "releases").iterdir()) == before

    refused = production.in_ns(                                          # a port where no sshd listens
        [sys.executable, "-m", "envtool", "-C", str(project), "deploy",
                                "ssh://root@127.0.0.1:2299"], env={**os.environ, "ENVTOOL_ROOT": store_root,
                                "ENVTOOL_SSH": f"ssh -i {key} -o UserKnownHostsFile={production.dir / 'known_hosts'}"}, timeout=60)
    assert refused.returncode == 1 and "cannot reach root@127.0.0.1:2299 over SSH" in refused.stderr, refused.stderr

    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    denied = deploy(project, production, stranger, laptop_root=store_root)
    assert denied.returncode == 1 and "refused the SSH key" in denied.stderr, denied.stderr

    missing = deploy(project, production, key, laptop_root=store_root, remote="/nonexistent/envtool")
    assert missing.returncode == 1 and "has no envtool" in missing.stderr, missing.stderr
    assert "Traceback" not in denied.stderr + missing.stderr + refused.stderr
    assert production.get(18321) == "v2 production"
