"""deploy over SSH: bytes sent and time to a host with nothing, the same release again, and a
one-file change; beside `docker save | ssh docker load` of the same image between two dockerds
(each the Swarm test's: own data root and socket, in a network namespace), which carries the whole
image every time.

    .venv/bin/python tests/bench/bench_deploy.py            (as root; the test store's py image)

The host is the deploy test's: a network namespace with its own sshd and envtool root."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.integration.release import dockerd  # noqa: E402
from tests.integration.release import test_deploy as t  # noqa: E402

ROOT = os.environ.get("ENVTOOL_ROOT", "/var/tmp/envtool-test")


def docker_save_load(project: Path, host: t.Host, key: Path) -> list[dict]:
    """The same image through `docker save | ssh HOST docker load` (plain and gzip), twice: the
    source dockerd pulls it from a loopback registry envtool pushed it to; the target dockerd is
    reached over the deploy test's sshd."""
    if dockerd.missing():
        return [{"error": dockerd.missing()}]
    import time

    src, dst = dockerd.Daemon(), dockerd.Daemon()
    rows = []
    try:
        for d in (src, dst):
            why = d.start()
            if why:
                return [{"error": why}]
        src.start_registry(5000)
        pushed = subprocess.run([*src.enter, sys.executable, "-m", "envtool", "-C", str(project), "push",
                                 "localhost:5000", "--json"], env={**os.environ, "ENVTOOL_ROOT": ROOT},
                                capture_output=True, text=True, check=True)
        ref = json.loads(pushed.stdout)[0]
        image = ref["ref"].rsplit(":", 1)[0] + "@" + ref["digest"]
        assert src.docker("pull", image).returncode == 0
        ssh = [*host.enter, "ssh", "-i", str(key), "-o", f"UserKnownHostsFile={host.dir / 'known_hosts'}",
               "-o", "StrictHostKeyChecking=accept-new", "-p", "2222", "root@127.0.0.1"]
        load = f"DOCKER_HOST=unix://{dst.sock} {dockerd.DOCKER} load"
        for label, remote, compress in (("docker save | ssh docker load", load, False),
                                        ("same image again", load, False),
                                        ("docker save | gzip | ssh 'gunzip | docker load'", "gunzip | " + load, True)):
            t0 = time.monotonic()
            save = subprocess.Popen([dockerd.DOCKER, "save", image], env=src.env, stdout=subprocess.PIPE)
            gz = subprocess.Popen(["gzip", "-1"], stdin=save.stdout, stdout=subprocess.PIPE) if compress else None
            feed = (gz or save).stdout
            assert feed is not None
            sent = 0
            recv = subprocess.Popen([*ssh, remote], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
            assert recv.stdin is not None
            while chunk := feed.read(1 << 20):
                sent += len(chunk)
                recv.stdin.write(chunk)
            recv.stdin.close()
            assert recv.wait() == 0 and save.wait() == 0 and (gz is None or gz.wait() == 0)
            rows.append({"transfer": label, "sent_bytes": sent, "seconds": round(time.monotonic() - t0, 2)})
    finally:
        src.stop()
        dst.stop()
    return rows


def main() -> None:
    base = Path(tempfile.mkdtemp())
    made_run = not os.path.isdir("/run/sshd")
    os.makedirs("/run/sshd", exist_ok=True)
    key = base / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    host = t.Host(base, "staging")
    rows = []
    try:
        host.start((base / "id.pub").read_text())
        project = base / "app"
        (project / "app").mkdir(parents=True)
        (project / "app" / "app.py").write_text(t.APP)
        (project / "app" / "version").write_text("v1\n")
        (project / "envtool.toml").write_text(
            t.PY.replace('packages = ["python3"]\n', 'packages = ["python3"]\ncopy = [{ src = "app/", dst = "/app" }]\n')
            + '\n[project]\nname = "measured"\n[services.web]\nimage = "py"\ncommand = ["python3", "/app/app.py"]\n'
              'ports = ["18321:8000"]\n')
        env = {**os.environ, "ENVTOOL_ROOT": ROOT}
        lock = [sys.executable, "-m", "envtool", "-C", str(project), "lock"]
        subprocess.run(lock, env=env, check=True, capture_output=True)
        for label in ("to an empty host", "same release again", "one file changed"):
            if label == "one file changed":
                (project / "app" / "version").write_text("v2\n")
                subprocess.run(lock, env=env, check=True, capture_output=True)
            d = json.loads(t.deploy(project, host, key, laptop_root=ROOT).stdout)
            rows.append({"deploy": label, "sent_bytes": d["sent_bytes"], "blobs_sent": d["blobs_sent"],
                         "blobs_held": d["blobs_held"], "seconds": d["seconds"]})
        out = base / "img.tar"
        save = [sys.executable, "-m", "envtool", "-C", str(project), "save", "py", "-o", str(out)]
        subprocess.run([*save, "--no-compress"], env=env, check=True, capture_output=True)
        whole = out.stat().st_size
        subprocess.run(save, env=env, check=True, capture_output=True)
        docker = docker_save_load(project, host, key)
        print(json.dumps({"deploys": rows, "whole_image_bytes": whole, "whole_image_gzip_bytes": out.stat().st_size,
                          "docker": docker}, indent=2))
    finally:
        host.stop()
        shutil.rmtree(base, ignore_errors=True)
        if made_run:
            shutil.rmtree("/run/sshd", ignore_errors=True)


if __name__ == "__main__":
    main()
