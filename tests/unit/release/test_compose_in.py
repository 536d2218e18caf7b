"""Compose → envtool.toml: the two public flask + redis shapes, and what is reported."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import yaml

from envtool.errors import SpecError
from envtool.release.compose_in import convert
from envtool.release.dockerfile_in import _instructions
from tests.conftest import DATA


def _convert(name: str, file: str):
    d = DATA / "compose" / name
    return convert(yaml.safe_load((d / file).read_text()), d)


def test_docker_docs_flask_redis():
    out = _convert("flask-redis", "compose.yaml")
    doc = out.document
    web = doc["images"]["web"]
    assert web["from"] == "debian:bookworm" and "python3-pip" in web["packages"]
    assert web["pip"] == ["flask", "redis"]
    assert web["env"] == {"FLASK_APP": "app.py", "FLASK_RUN_HOST": "0.0.0.0"}
    assert web["workdir"] == "/code" and web["cmd"] == ["flask", "run", "--debug"]
    assert {"src": "./", "dst": "/code"} in web["copy"]
    assert {"src": "requirements.txt", "dst": "/code/requirements.txt"} in web["copy"]
    assert "gcc" in web["packages"] and "libc6-dev" in web["packages"]      # apk add → Debian names
    assert doc["images"]["redis"]["packages"] == ["redis-server", "redis-tools"]
    assert doc["services"] == {"web": {"image": "web", "ports": ["8000:5000"]}, "redis": {"image": "redis"}}
    assert any("redis:alpine" in n for n in out.notes) and any("apk add" in n for n in out.notes)


def test_awesome_compose_flask_redis_multi_stage():
    out = _convert("awesome-flask-redis", "docker-compose.yml")
    web = out.document["images"]["web"]
    assert web["entrypoint"] == ["python3"] and web["cmd"] == ["app.py"]    # inherited from `builder`
    assert {"git", "bash"} <= set(web["packages"])                          # the heredoc's apk add
    assert {"src": "requirements.txt", "dst": "/code/requirements.txt"} in web["copy"]  # into the WORKDIR
    svc = out.document["services"]["web"]
    assert svc["volumes"] == [".:/code"] and svc["depends_on"] == {"redis": "started"}
    assert out.document["services"]["redis"]["image"] == "redismod"
    notes = "\n".join(out.notes)
    assert "COPY --from=gloursdocker/docker" in notes and "addgroup -S docker" in notes
    assert "'version'" not in notes


def test_build_target_picks_the_stage():
    d = DATA / "compose" / "awesome-flask-redis"
    out = convert({"services": {"web": {"build": {"context": ".", "target": "builder"}}}}, d)
    assert "git" not in out.document["images"]["web"]["packages"]
    with pytest.raises(SpecError, match="build target 'nope'"):
        convert({"services": {"web": {"build": {"context": ".", "target": "nope"}}}}, d)


def test_every_unconvertible_key_is_reported(tmp_path):
    compose = {"services": {"app": {"image": "example.org/team/app:1", "privileged": True, "networks": ["x"],
                                    "healthcheck": {"test": "curl -f localhost", "interval": "5s"},
                                    "deploy": {"replicas": 2, "resources": {"limits": {"memory": "256m"}}},
                                    "environment": ["A=1", "B"], "restart": "on-failure:3"}},
               "networks": {"x": {}}}
    out = convert(compose, tmp_path)
    app = out.document["services"]["app"]
    assert app["image"] == "example.org/team/app:1" and app["replicas"] == 2
    assert app["resources"] == {"memory": "256M"} and app["restart"] == "on-failure"
    assert app["healthcheck"] == {"command": ["sh", "-c", "curl -f localhost"], "interval": "5s"}
    assert app["environment"] == {"A": "1", "B": "${B}"}
    notes = "\n".join(out.notes)
    assert "'privileged' is not converted" in notes and "'networks' is not converted" in notes
    assert "top-level 'networks'" in notes and "kept as a registry reference" in notes


def test_no_services_is_an_error(tmp_path):
    with pytest.raises(SpecError, match="no services"):
        convert({"version": "3"}, tmp_path)


def test_heredocs_continuations_and_comments():
    text = "FROM x AS a\n# c\nRUN a \\\n  b\nRUN <<EOT\none\ntwo\nEOT\nCMD [\"z\"]\n"
    assert _instructions(text) == [("FROM", "x AS a"), ("RUN", "a  b"), ("RUN", "one\ntwo"), ("CMD", '["z"]')]


def test_import_cli_writes_a_valid_file_and_refuses_to_overwrite(tmp_path):
    d = tmp_path / "p"
    shutil.copytree(DATA / "compose" / "flask-redis", d)
    run = [sys.executable, "-m", "envtool", "import", str(d / "compose.yaml")]
    first = subprocess.run(run, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert "redis:alpine" in first.stderr and (d / "envtool.toml").exists()
    assert subprocess.run([sys.executable, "-m", "envtool", "-C", str(d), "validate"]).returncode == 0
    again = subprocess.run(run, capture_output=True, text=True)
    assert again.returncode == 2 and "already exists" in again.stderr
    (d / "bad.yaml").write_text("services:\n  web: [\n")
    bad = subprocess.run([sys.executable, "-m", "envtool", "import", str(d / "bad.yaml")], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "bad.yaml:" in bad.stderr and "invalid YAML" in bad.stderr


def test_update_config_is_imported_and_what_has_no_meaning_here_is_said(tmp_path):
    compose = {"services": {"app": {"image": "example.org/team/app:1", "deploy": {"update_config": {
        "parallelism": 2, "order": "start-first", "monitor": "30s", "failure_action": "continue", "delay": "5s"}}}}}
    out = convert(compose, tmp_path)
    assert out.document["services"]["app"]["update"] == {"order": "start-first", "parallelism": 2,
                                                         "monitor": "30s", "failure_action": "pause"}
    notes = "\n".join(out.notes)
    assert "failure_action continue is not supported" in notes and "update_config.delay is not converted" in notes
