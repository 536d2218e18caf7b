"""The measure of the Compose issue: public Compose samples (tests/data/compose/samples, written
from the published shapes of a well-known collection of small stacks), each imported as a new user
would, built, brought up and reached through its published port — or, where Debian, PyPI and npm
cannot supply the software, refused at import with one clear line naming what is missing.

A few kinds run in CI; the rest are `long` (python -m pytest -m long -k samples), as each builds
its own images."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest

from tests.conftest import DATA
from tests.integration.release.test_official_images import Stack

pytestmark = [pytest.mark.root, pytest.mark.slow]
SAMPLES = DATA / "compose" / "samples"

# sample → (published port, path, what the page shows), the kinds CI runs unmarked
WORKS = {
    "flask": (8000, "/", "Hello World!"),
    "fastapi": (8000, "/", '{"message":"Hello World"}'),
    "nginx-flask-mysql": (80, "/", "Blog post #42"),
    "nginx-nodejs-redis": (80, "/", "Number of visits is: 1"),
}
LONG = {
    "nginx-golang": (80, "/", "Hello from Go"),
    "django": (8000, "/", "Hello from Django"),
    "apache-php": (80, "/", "Hello World!"),
    "nginx-wsgi-flask": (80, "/", "Hello, World!"),
    "wordpress-mysql": (80, "/wp-admin/install.php", "five-minute WordPress installation"),
    "react-express-mysql": (80, "/", "backend"),
    "vuejs": (80, "/", "vue dev server"),
}
REFUSED = {
    "nginx-flask-mongo": "MongoDB is not packaged in Debian",
    "react-java-mysql": "Maven builds fetch their dependencies from Maven Central",
    "react-rust-postgres": "Rust builds fetch their crates from crates.io",
    "prometheus-grafana": "the Prometheus image is not translated",
    "elasticsearch-logstash-kibana": "Elasticsearch is not packaged in Debian",
    "traefik-golang": "Traefik is not packaged in Debian",
    "aspnet-mssql": ".NET is not packaged in Debian",
    "postgresql-pgadmin": "pgAdmin 4 is not packaged in Debian",
}


def test_every_sample_is_accounted_for():
    assert sorted(p.name for p in SAMPLES.iterdir()) == sorted({**WORKS, **LONG, **REFUSED})


@pytest.mark.parametrize("sample", sorted(REFUSED))
def test_what_cannot_be_supplied_is_refused_at_import_in_one_line(sample, tmp_path):
    d = tmp_path / sample
    shutil.copytree(SAMPLES / sample, d)
    proc = subprocess.run([sys.executable, "-m", "envtool", "import", str(d / "compose.yaml")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and REFUSED[sample] in errors[0], proc.stderr
    assert "--keep-registry-images" in proc.stderr
    assert not (d / "envtool.toml").exists() and not (d / "envtool-images").exists()


@pytest.mark.parametrize("sample", [*sorted(WORKS), *[pytest.param(s, marks=pytest.mark.long) for s in sorted(LONG)]])
def test_sample_imports_and_comes_up(sample, tmp_path, store_root, leak_check):
    port, path, expect = {**WORKS, **LONG}[sample]
    d = tmp_path / sample
    shutil.copytree(SAMPLES / sample, d)
    s = Stack(d, store_root)
    try:
        s.up()
        body = s.get(port, path, seconds=120)
        deadline = time.monotonic() + 120
        while expect not in body and time.monotonic() < deadline:     # a proxy before its backend is up
            time.sleep(1)
            body = s.get(port, path)
        assert expect in body, body[:2000] + "\n" + s.envtool("logs").stdout[-3000:]
    finally:
        s.close()
