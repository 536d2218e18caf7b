"""Hole 7: run/pip steps used the host's network namespace (host loopback services, AF_PACKET on
the host's interfaces); hole 8: a step's `etc` symlink made the host delete its own files; hole 3:
`mirror` could carry a second line into apt's sources."""

import http.server
import os
import threading

import pytest

pytestmark = pytest.mark.root


class _Secret(http.server.BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self):  # noqa: N802
        type(self).hits += 1
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"loopback-only-secret")

    def log_message(self, *args):
        pass


def test_a_build_step_reaches_neither_host_loopback_nor_host_interfaces(stack):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Secret)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    step = ("import os, sys, urllib.request\n"
            "links = sorted(os.listdir('/sys/class/net'))\n"
            "print('links', links)\n"
            "try:\n"
            f"    got = urllib.request.urlopen('http://127.0.0.1:{port}/', timeout=3).read()\n"
            "except OSError as e:\n"
            "    got = repr(e).encode()\n"
            "print('loopback', got)\n"
            "sys.exit(3 if b'secret' in got else 4 if set(links) - {'lo', 'eth0'} else 0)\n")
    try:
        stack.write(f"""
[images.attack]
from = "image:py"
run = ['''python3 -c "{step}"''']
""".replace("{step}", step.replace('"', '\\"')))
        out = stack.cli("build", "attack", "--progress", "plain")
        assert "exit code 3" not in out.stderr, "a build step fetched a host-loopback-only secret"
        assert "exit code 4" not in out.stderr, "a build step saw the host's network interfaces"
        assert out.returncode == 0, out.stderr[-2000:]
        assert _Secret.hits == 0
    finally:
        server.shutdown()
        server.server_close()


def test_a_build_steps_etc_symlink_does_not_make_the_host_delete_files(stack, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    for name in ("hosts", "hostname", "resolv.conf"):
        (victim / name).write_text("the host's own file\n")
    evil = stack.dir / "evil"
    evil.mkdir()
    os.symlink("/elsewhere", evil / "etc")       # the image's /etc is a symlink (any base may be so)
    stack.write(f"""
[images.attack]
from = "image:py"
copy = [{{ src = "evil/", dst = "/" }}]
run = ["rm /etc && ln -s {victim} /etc"]
""")
    out = stack.cli("build", "attack", "--progress", "plain")
    assert sorted(os.listdir(victim)) == ["hostname", "hosts", "resolv.conf"], "the host deleted its files"
    assert out.returncode == 0, out.stderr[-2000:]


def test_a_mirror_cannot_inject_apt_sources(stack, tmp_path):
    stack.write("""
[images.attack]
from = "debian:bookworm"
packages = ["hello"]
mirror = "http://127.0.0.1:9/debian\\nTrusted: yes"
""")
    out = stack.cli("build", "attack")
    assert out.returncode == 2, out.stderr
    assert "envtool.toml:" in out.stderr and "mirror" in out.stderr and "single URL" in out.stderr
