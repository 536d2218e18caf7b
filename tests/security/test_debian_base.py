"""Hole 3, second half: a package's maintainer script ran as the host's root in mmdebstrap's root mode
(a plain chroot), so a hostile repository owned the host.  Performed here with a trusted repository
on loopback whose package's postinst tries the two classic ways out of a chroot."""

import hashlib
import http.server
import os
import subprocess
import threading
from functools import partial

import pytest

pytestmark = [pytest.mark.root, pytest.mark.slow]

POSTINST = """#!/bin/sh
# 1: the host's init's root, through /proc
echo escaped > /proc/1/root{victim}/via-proc 2>/dev/null
# 2: chroot, walk up, chroot again (root of a plain chroot can; perl-base is essential)
perl -e 'mkdir "/.out"; chroot "/.out"; chdir ".." for 1..64; chroot "."; open(F, ">", "{victim}/via-chroot") and print F "escaped\\n";' 2>/dev/null
exit 0
"""


def _hostile_repo(root, victim) -> None:
    pkg = root / "build" / "evilpkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text("Package: evilpkg\nVersion: 1.0\nArchitecture: all\n"
                                            "Maintainer: nobody <nobody@example.invalid>\nDescription: postinst escape\n")
    (pkg / "DEBIAN" / "postinst").write_text(POSTINST.replace("{victim}", str(victim)))
    os.chmod(pkg / "DEBIAN" / "postinst", 0o755)
    deb = root / "repo" / "evilpkg_1.0_all.deb"
    deb.parent.mkdir()
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(pkg), str(deb)], check=True,
                   capture_output=True)
    data = deb.read_bytes()
    packages = ("Package: evilpkg\nVersion: 1.0\nArchitecture: all\nMaintainer: nobody <nobody@example.invalid>\n"
                f"Filename: ./{deb.name}\nSize: {len(data)}\nSHA256: {hashlib.sha256(data).hexdigest()}\n"
                "Description: postinst escape\n\n").encode()
    (root / "repo" / "Packages").write_bytes(packages)
    (root / "repo" / "Release").write_text(
        "Origin: evil\nLabel: evil\nSuite: evil\nCodename: evil\nArchitectures: all amd64 arm64\n"
        "Date: Thu, 01 Jan 2026 00:00:00 UTC\n"
        f"SHA256:\n {hashlib.sha256(packages).hexdigest()} {len(packages)} Packages\n")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_maintainer_scripts_of_a_hostile_repository_cannot_touch_the_host(tmp_path):
    from envtool.image.sources import debian

    victim = tmp_path / "victim"                # root's, 0700 above it: only the host's root may write
    victim.mkdir()
    _hostile_repo(tmp_path, victim)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(tmp_path / "repo")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sources = debian.host_sources("bookworm") + (
            f"\nTypes: deb\nURIs: http://127.0.0.1:{server.server_address[1]}/\nSuites: ./\nTrusted: yes\n")
        installed = debian.build_rootfs("bookworm", ["evilpkg"], "apt", sources, str(tmp_path / "out.tar"), 0)
        assert "evilpkg" in {p.name for p in installed}, "the hostile package was not even installed"
    finally:
        server.shutdown()
        server.server_close()
    assert sorted(os.listdir(victim)) == [], "a maintainer script wrote to the host"
