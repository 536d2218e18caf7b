"""deploy over SSH: bytes sent and time to a host with nothing, the same release again, and a
one-file change; beside the whole image, which `docker save | ssh docker load` carries every time.

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

from tests.integration.release import test_deploy as t  # noqa: E402

ROOT = os.environ.get("ENVTOOL_ROOT", "/var/tmp/envtool-test")


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
        print(json.dumps({"deploys": rows, "whole_image_bytes": whole, "whole_image_gzip_bytes": out.stat().st_size},
                         indent=2))
    finally:
        host.stop()
        shutil.rmtree(base, ignore_errors=True)
        if made_run:
            shutil.rmtree("/run/sshd", ignore_errors=True)


if __name__ == "__main__":
    main()
