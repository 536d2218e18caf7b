"""A Docker daemon of the test's own, shut in a network namespace: its bridges, overlay networks,
iptables rules and published ports live and die with that namespace, and its mounts with a private
mount namespace.  It has its own --data-root, --exec-root, socket, pidfile and cgroup parent, so the
machine's own Docker (if any) is never touched.  A registry (Debian's docker-registry) can run in the
same namespace on 127.0.0.1:5000, where the daemon pulls from it as `localhost:5000/...`."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

# Debian's client, the daemon's own version (a newer client elsewhere on PATH would accept keys 20.10 ignores)
DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else (shutil.which("docker") or "docker")
CONTROLLERS = ("memory", "pids", "cpu", "cpuacct", "cpu,cpuacct", "devices", "blkio", "freezer", "net_cls",
               "net_cls,net_prio", "perf_event", "hugetlb", "cpuset", "systemd", "unified", "")


def missing() -> str | None:
    """Why a test daemon cannot run here (None: it can)."""
    for exe, pkg in (("dockerd", "docker.io"), ("docker", "docker.io"), ("docker-registry", "docker-registry")):
        if shutil.which(exe) is None:
            return f"{exe} is not installed (apt-get install {pkg})"
    return None


class Daemon:
    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.ns = f"etsw-{tag}"
        self.cgroup = f"etsw-{tag}"
        # short: containerd's socket lives under the exec root and a unix socket path has 108 bytes
        self.dir = Path(tempfile.mkdtemp(prefix=f"etsw-{tag}-", dir="/var/tmp"))
        self.sock = self.dir / "docker.sock"
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{self.sock}", "DOCKER_CONFIG": str(self.dir / "cli")}
        self.procs: list[subprocess.Popen[bytes]] = []
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        subprocess.run(["ip", "-n", self.ns, "link", "set", "lo", "up"], check=True)

    @property
    def enter(self) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{self.ns}"]

    def in_ns(self, argv: list[str], **kw) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.enter, *argv], capture_output=True, text=True, **kw)

    def docker(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([DOCKER, *args], env=self.env, capture_output=True, text=True, timeout=timeout)

    def _wait_port(self, port: int) -> None:
        self.in_ns([sys.executable, "-c", "import socket, time\nfor _ in range(200):\n    try:\n"
                    f"        socket.create_connection(('127.0.0.1', {port}), 1).close(); break\n"
                    "    except OSError: time.sleep(0.05)\n"], check=True, timeout=30)

    def start_registry(self, port: int = 5000) -> None:
        cfg = self.dir / "registry.yml"
        cfg.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {self.dir / 'registry'}\n"
                       f"http:\n  addr: 127.0.0.1:{port}\n")
        self.procs.append(subprocess.Popen([*self.enter, "docker-registry", "serve", str(cfg)],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self._wait_port(port)

    def start(self) -> str | None:
        """Starts dockerd; returns why it could not (None: it runs)."""
        log = open(self.dir / "dockerd.log", "wb")
        # unshare without --fork execs: the pid is dockerd's own
        self.procs.append(subprocess.Popen(
            [*self.enter, "unshare", "--mount", "--propagation", "private", "dockerd",
             "--data-root", str(self.dir / "data"), "--exec-root", str(self.dir / "x"), "-H", f"unix://{self.sock}",
             "--pidfile", str(self.dir / "docker.pid"), "--cgroup-parent", f"/{self.cgroup}",
             "--storage-driver", "overlay2", "--log-level", "warn"], stdout=log, stderr=log))
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.procs[-1].poll() is not None:
                return "dockerd exited: " + (self.dir / "dockerd.log").read_text()[-800:]
            if self.sock.exists() and self.docker("info", "--format", "{{.ServerVersion}}", timeout=10).returncode == 0:
                return None
            time.sleep(0.2)
        return "dockerd did not answer within 60 s: " + (self.dir / "dockerd.log").read_text()[-800:]

    def swarm_init(self) -> str | None:
        out = self.docker("swarm", "init", "--advertise-addr", "127.0.0.1", timeout=60)
        return None if out.returncode == 0 else "docker swarm init: " + out.stderr.strip()

    def _leftover_pids(self) -> list[int]:
        """Processes the daemon started that outlived it (containerd shims, container processes):
        found by the exec root in their command line or by the test's cgroup parent."""
        pids = set()
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if str(self.dir).encode() in f.read():
                        pids.add(int(d))
                        continue
                with open(f"/proc/{d}/cgroup") as f:
                    text = f.read()
                if f"/{self.cgroup}/" in text or f"/{self.cgroup}\n" in text:
                    pids.add(int(d))
            except OSError:
                pass
        pids.discard(os.getpid())
        return sorted(pids)

    def stop(self) -> None:
        if self.procs and self.procs[-1].poll() is None and self.sock.exists():
            self.docker("swarm", "leave", "--force", timeout=60)
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(10)
        for pid in self._leftover_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
        for ctl in CONTROLLERS:
            base = Path("/sys/fs/cgroup", ctl, self.cgroup) if ctl else Path("/sys/fs/cgroup", self.cgroup)
            if base.is_dir():
                for sub in [*sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)), base]:
                    for _ in range(50):           # a killed task leaves its cgroup a moment later
                        try:
                            sub.rmdir()
                            break
                        except FileNotFoundError:
                            break
                        except OSError:
                            time.sleep(0.1)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
        with open("/proc/self/mounts") as f:      # none expected: the daemon's mount namespace was private
            stray = [line.split()[1] for line in f if str(self.dir) in line]
        for m in sorted(stray, key=len, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
