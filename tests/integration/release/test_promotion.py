"""Bundles and promotion across two "hosts" on one machine: each a network namespace of its own
with an envtool root of its own.  The bundle is made in the test store, deployed to staging,
promoted, and deployed to production; both must run the same image digests."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import uuid
from pathlib import Path

import pytest

from tests.integration.release.hosts import Host
from tests.integration.stack.conftest import PY_RECIPE

pytestmark = [pytest.mark.root]

SERVER = ("import http.server, os\n"
          "class H(http.server.BaseHTTPRequestHandler):\n"
          "    def do_GET(self):\n"
          "        body = (os.environ.get('GREETING', '') + ' ' + open('/srv/page.txt').read()).encode()\n"
          "        self.send_response(200); self.end_headers(); self.wfile.write(body)\n"
          "    def log_message(self, *a): pass\n"
          "http.server.ThreadingHTTPServer(('', 8000), H).serve_forever()\n")


@pytest.fixture(scope="module")
def locked_project(tmp_path_factory, py_image, store_root):
    """The project, locked once (locking resolves the Debian packages again: seconds)."""
    name = f"r{uuid.uuid4().hex[:8]}"
    d = tmp_path_factory.mktemp("locked") / "project"
    (d / "site").mkdir(parents=True)
    (d / "site" / "page.txt").write_text("hello from the bundle")
    (d / "server.py").write_text(SERVER)
    recipe = PY_RECIPE.replace('packages = ["python3"]\n',
                               'packages = ["python3"]\ncopy = [{ src = "server.py", dst = "/app/server.py" }]\n')
    (d / "envtool.toml").write_text(f'''[project]
name = "{name}"
{recipe}
[services.web]
image = "py"
command = ["python3", "/app/server.py"]
init = true
ports = ["8000:8000"]
volumes = ["./site:/srv:ro"]
environment = {{ GREETING = "base" }}
healthcheck = {{ command = ["python3", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/')"], interval = "0.3s", retries = 40 }}

[environments.staging.services.web]
environment = {{ GREETING = "staging" }}

[environments.production.services.web]
environment = {{ GREETING = "production" }}

[environments.broken.services.web]
healthcheck = {{ command = ["false"], interval = "0.2s", retries = 1 }}
''')
    env = {**os.environ, "ENVTOOL_ROOT": store_root}
    proc = subprocess.run([sys.executable, "-m", "envtool", "-C", str(d), "lock"], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return name, d


@pytest.fixture
def project(locked_project, tmp_path, envtool_env, leak_check):
    name, template = locked_project
    d = tmp_path / "project"
    shutil.copytree(template, d)

    def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "envtool", "-C", str(d), *args], env=envtool_env,
                              capture_output=True, text=True, timeout=600)
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc

    return name, d, cli


@pytest.fixture
def hosts(tmp_path, project):
    made: list[Host] = []

    def make(label: str) -> Host:
        h = Host(f"et-{label}-{uuid.uuid4().hex[:6]}", tmp_path / f"{label}-root")
        made.append(h)
        return h

    yield make
    for h in made:
        h.close(project[0])


def test_bundle_runs_on_another_host_and_promotion_keeps_the_digests(project, hosts, tmp_path):
    name, d, cli = project
    made = cli("bundle", "-o", str(tmp_path / "app.bundle"), "--json")
    out = json.loads(made.stdout)
    release, images = out["release"], out["images"]
    assert release.startswith("sha256:") and out["environments"] == ["broken", "production", "staging"]
    again = json.loads(cli("bundle", "-o", str(tmp_path / "again.bundle"), "--json").stdout)
    assert again["release"] == release                      # no time stamps: the same project, the same id
    assert (tmp_path / "again.bundle").read_bytes() == (tmp_path / "app.bundle").read_bytes()

    staging, production = hosts("stg"), hosts("prod")
    up = staging.run("up", "-d", "--bundle", str(tmp_path / "app.bundle"), "--env", "staging", cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    assert f"release {release}" in up.stderr
    assert staging.get(8000) == "staging hello from the bundle"

    # promote runs where staging is (its root) with the project checked out
    refused = subprocess.run([sys.executable, "-m", "envtool", "-C", str(d), "promote", "--from", "production",
                              "--to", "staging"], env={**os.environ, "ENVTOOL_ROOT": str(staging.root)},
                             capture_output=True, text=True)
    assert refused.returncode == 1 and "nothing is deployed in 'production'" in refused.stderr
    promoted = subprocess.run([sys.executable, "-m", "envtool", "-C", str(d), "promote", "--from", "staging",
                               "--to", "production", "--json"],
                              env={**os.environ, "ENVTOOL_ROOT": str(staging.root)}, capture_output=True, text=True)
    assert promoted.returncode == 0, promoted.stderr
    record = json.loads(promoted.stdout)
    assert record["release"] == release and record["images"] == images
    history = (d / "envtool.releases.toml").read_text()
    assert release in history and 'to = "production"' in history

    up = production.run("up", "-d", "--bundle", str(tmp_path / "app.bundle"), "--env", "production",
                        "--release", release)
    assert up.returncode == 0, up.stderr
    assert production.get(8000) == "production hello from the bundle"

    def digests(host: Host) -> set[str]:
        rows = json.loads(host.run("-p", name, "ps", "--json").stdout)
        return {r["image"] for r in rows}

    assert digests(staging) == digests(production) == set(images.values())
    shown = json.loads(production.run("-p", name, "releases", "--json").stdout)
    assert shown["current"] == {"release": release, "env": "production", "healthy": shown["current"]["healthy"]}
    assert [r["release"] for r in shown["deployments"]] == [release]


def _rewrite(src: Path, dst: Path, change) -> None:
    with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
        for m in tin.getmembers():
            data = tin.extractfile(m).read()
            data = change(m.name, data)
            m.size = len(data)
            tout.addfile(m, io.BytesIO(data))


def test_a_tampered_bundle_is_refused_and_nothing_runs(project, hosts, tmp_path):
    name, d, cli = project
    cli("bundle", "--no-compress", "-o", str(tmp_path / "plain.bundle"))
    host = hosts("tamper")

    def other_greeting(member: str, data: bytes) -> bytes:
        return data.replace(b'"GREETING":"staging"', b'"GREETING":"evil!!!"') if member == "stack.json" else data

    def flip_layer_byte(member: str, data: bytes) -> bytes:
        if member.startswith("blobs/") and len(data) > 100_000:
            return data[:50_000] + bytes([data[50_000] ^ 1]) + data[50_001:]
        return data

    for label, change, expect in (("stack", other_greeting, "release.json does not describe"),
                                  ("layer", flip_layer_byte, "does not match its digest")):
        bad = tmp_path / f"{label}.bundle"
        _rewrite(tmp_path / "plain.bundle", bad, change)
        proc = host.run("up", "-d", "--bundle", str(bad), "--env", "staging")
        assert proc.returncode == 2, proc.stderr
        assert expect in proc.stderr and "altered" in proc.stderr, proc.stderr
        assert not (host.root / "projects" / name).exists()
    other = host.run("up", "-d", "--bundle", str(tmp_path / "plain.bundle"), "--env", "staging",
                     "--release", "sha256:" + "0" * 64)
    assert other.returncode == 2 and "not sha256:000" in other.stderr


def test_promote_refuses_a_release_that_was_never_healthy_or_whose_lock_changed(project, hosts, tmp_path):
    name, d, cli = project
    cli("bundle", "-o", str(tmp_path / "app.bundle"))
    host = hosts("stg2")
    assert host.run("up", "-d", "--bundle", str(tmp_path / "app.bundle"), "--env", "broken").returncode == 0
    env = {**os.environ, "ENVTOOL_ROOT": str(host.root)}

    def promote(source: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "envtool", "-C", str(d), "promote", "--from", source,
                               "--to", "production"], env=env, capture_output=True, text=True)

    never = promote("broken")
    assert never.returncode == 1 and "was never healthy in 'broken'" in never.stderr, never.stderr
    assert not (d / "envtool.releases.toml").exists()

    assert host.run("up", "-d", "--bundle", str(tmp_path / "app.bundle"), "--env", "staging").returncode == 0
    with open(d / "envtool.lock", "a") as f:
        f.write("# edited\n")
    changed = promote("staging")
    assert changed.returncode == 1 and "envtool.lock changed since release" in changed.stderr, changed.stderr
    assert not (d / "envtool.releases.toml").exists()


def test_a_whole_stack_deployed_from_the_project_is_the_same_release(project, hosts, tmp_path, store_root):
    name, d, cli = project
    release = json.loads(cli("bundle", "-o", str(tmp_path / "b.bundle"), "--json").stdout)["release"]
    host = hosts("proj")
    host.root = Path(store_root)                              # the test store: images already there
    up = host.run("-C", str(d), "up", "-d", "--env", "staging")
    assert up.returncode == 0, up.stderr
    deadline = time.monotonic() + 20
    while True:
        shown = json.loads(host.run("-C", str(d), "releases", "--json").stdout)
        if shown["current"]["healthy"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert shown["current"] == {"release": release, "env": "staging", "healthy": True}
    assert shown["deployments"][-1]["source"] == f"project:{d}"
    promoted = host.run("-C", str(d), "promote", "--from", "staging", "--to", "production", "--json")
    assert promoted.returncode == 0, promoted.stderr
    assert json.loads(promoted.stdout)["release"] == release
