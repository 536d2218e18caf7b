"""push → gc → pull through a real registry on loopback (Debian's docker-registry, started here)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def registry(tmp_path):
    exe = shutil.which("docker-registry")
    if not exe:
        pytest.skip("docker-registry is not installed (apt-get install -y docker-registry)")
    port = free_port()
    cfg = tmp_path / "registry.yml"
    cfg.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'data'}\n"
                   f"http:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen([exe, "serve", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"localhost:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def cli(root, *args):
    env = {**os.environ, "ENVTOOL_ROOT": str(root)}
    return subprocess.run([sys.executable, "-m", "envtool", *args], env=env, capture_output=True, text=True,
                          timeout=600)


def test_push_gc_pull_round_trips_the_manifest_digest(tmp_path, registry):
    import tomllib

    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "envtool.toml").write_text('[project]\nname = "regtest"\n[images.bb]\nfrom = "debian:bookworm"\n'
                                       'variant = "extract"\npackages = ["busybox-static"]\n'
                                       'cmd = ["/bin/busybox", "echo", "from the registry"]\n')
    a = tmp_path / "root-a"
    pushed = cli(a, "-C", str(proj), "push", f"{registry}/team", "--json")
    assert pushed.returncode == 0, pushed.stderr
    [row] = json.loads(pushed.stdout)
    assert row["uploaded_blobs"] == 2
    locked = tomllib.loads((proj / "envtool.lock").read_text())["images"]["bb"]["digest"]
    assert row["digest"] == locked                  # the registry serves the locked digest itself
    again = cli(a, "-C", str(proj), "push", f"{registry}/team", "--json")
    assert json.loads(again.stdout)[0]["uploaded_blobs"] == 0          # the registry has every blob
    assert cli(a, "gc").returncode == 0
    b = tmp_path / "root-b"
    pulled = cli(b, "pull", row["ref"])
    assert pulled.returncode == 0, pulled.stderr
    assert row["digest"] in pulled.stderr
    by_digest = cli(b, "pull", row["ref"].rsplit(":", 1)[0] + "@" + row["digest"])
    assert by_digest.returncode == 0 and row["digest"] in by_digest.stderr
    run = cli(b, "run", row["ref"])
    assert run.returncode == 0 and run.stdout == "from the registry\n", run.stderr


def test_a_registry_base_is_locked_by_digest(tmp_path, registry):
    import tomllib

    base = tmp_path / "base"
    base.mkdir()
    (base / "envtool.toml").write_text('[project]\nname = "regbase"\n[images.bb]\nfrom = "debian:bookworm"\n'
                                       'variant = "extract"\npackages = ["busybox-static"]\n')
    root = tmp_path / "root"
    [row] = json.loads(cli(root, "-C", str(base), "push", f"{registry}/lib", "--json").stdout)
    app = tmp_path / "app"
    (app / "files").mkdir(parents=True)
    (app / "files" / "x.txt").write_text("x\n")
    (app / "envtool.toml").write_text(f'[project]\nname = "regapp"\n[images.app]\nfrom = "{row["ref"]}"\n'
                                      'copy = [{ src = "files", dst = "/files" }]\n')
    assert cli(root, "-C", str(app), "lock").returncode == 0
    entry = tomllib.loads((app / "envtool.lock").read_text())["images"]["app"]
    assert entry["base"] == row["digest"] and entry["source"] == row["ref"]
    built = cli(tmp_path / "root2", "-C", str(app), "build", "--locked", "--json")
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout)[0]["digest"] == entry["digest"]


@pytest.fixture
def token_gateway(registry):
    """The registry behind the distribution token protocol, as Docker Hub, ghcr.io and quay.io
    serve images: /v2/ answers 401 with a Bearer challenge until a request carries the token the
    realm hands out for that repository's pull scope; then requests go through to the registry."""
    import http.server
    import threading
    import urllib.parse
    import urllib.request

    seen: list[str] = []

    class Gateway(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            if url.path == "/token":
                q = dict(urllib.parse.parse_qsl(url.query))
                seen.append(f"token {q.get('service')} {q.get('scope')}")
                body = json.dumps({"token": f"T:{q.get('scope')}"}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            repo = url.path.split("/v2/", 1)[-1].rsplit("/manifests/", 1)[0].rsplit("/blobs/", 1)[0]
            scope = f"repository:{repo}:pull"
            if self.headers.get("Authorization") != f"Bearer T:{scope}":
                seen.append("401 " + url.path)
                self.send_response(401)
                self.send_header("WWW-Authenticate", f'Bearer realm="http://{self.headers["Host"]}/token",'
                                                     f'service="gateway.test",scope="{scope}"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            req = urllib.request.Request(f"http://{registry}{self.path}",
                                         headers={"Accept": self.headers.get("Accept", "*/*")})
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    status, headers, body = r.status, r.headers, r.read()
            except urllib.error.HTTPError as e:
                status, headers, body = e.code, e.headers, e.read()
            self.send_response(status)
            for k in ("Content-Type", "Docker-Content-Digest"):
                if headers.get(k):
                    self.send_header(k, headers[k])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"localhost:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_pull_answers_a_bearer_token_challenge(tmp_path, registry, token_gateway):
    gateway, seen = token_gateway
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "envtool.toml").write_text('[project]\nname = "regtoken"\n[images.bb]\nfrom = "debian:bookworm"\n'
                                       'variant = "extract"\npackages = ["busybox-static"]\n'
                                       'cmd = ["/bin/busybox", "echo", "behind a token"]\n')
    [row] = json.loads(cli(tmp_path / "a", "-C", str(proj), "push", f"{registry}/library", "--json").stdout)
    ref = row["ref"].replace(registry, gateway)
    pulled = cli(tmp_path / "b", "pull", ref)
    assert pulled.returncode == 0, pulled.stderr
    assert row["digest"] in pulled.stderr
    repo = ref.split("/", 1)[1].rsplit(":", 1)[0]
    assert seen[0].startswith(f"401 /v2/{repo}/manifests/")
    assert f"token gateway.test repository:{repo}:pull" in seen
    run = cli(tmp_path / "b", "run", ref)
    assert run.returncode == 0 and run.stdout == "behind a token\n", run.stderr
