"""Compose → envtool.toml: the public flask + redis shapes, Dockerfile translation (BuildKit's
parser), official images with their contracts, Compose keys, and what is reported."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from envtool.errors import SpecError
from envtool.release import toml_out
from envtool.release.compose_in import convert
from envtool.release.dockerfile_in import expand
from envtool.spec.load import load
from tests.conftest import DATA


def _convert(name: str, file: str):
    d = DATA / "compose" / name
    return convert(yaml.safe_load((d / file).read_text()), d, source=str(d / file))


def project(tmp_path: Path, compose: str, dockerfile: str | None = None, **files: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "compose.yaml").write_text(compose)
    if dockerfile is not None:
        (tmp_path / "Dockerfile").write_text(dockerfile)
    for name, text in files.items():
        (tmp_path / name.replace("__", "/")).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name.replace("__", "/")).write_text(text)
    return tmp_path


def imported(d: Path, **kw):
    return convert(yaml.safe_load((d / "compose.yaml").read_text()), d, source=str(d / "compose.yaml"), **kw)


def valid(out, d: Path) -> dict:
    """The document as import writes it, loaded back by envtool (support files written first)."""
    for rel, text in out.files.items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_text(text)
    (d / "envtool.toml").write_text(toml_out.dumps(out.document))
    load(directory=d)
    return tomllib.loads((d / "envtool.toml").read_text())


def test_docker_docs_flask_redis(tmp_path):
    out = _convert("flask-redis", "compose.yaml")
    web = out.document["images"]["web"]
    assert web["from"] == "debian:bookworm" and {"python3-pip", "gcc", "libc6-dev"} <= set(web["packages"])
    # the Dockerfile's order: requirements first, install, then the source (an edit reinstalls nothing)
    assert web["steps"][1:] == [{"copy": {"src": "requirements.txt", "dst": "/code/requirements.txt"}},
                                {"pip": ["flask", "redis"]}, {"copy": {"src": "./", "dst": "/code"}}]
    assert web["env"] == {"FLASK_APP": "app.py", "FLASK_RUN_HOST": "0.0.0.0"}
    assert web["workdir"] == "/code" and web["cmd"] == ["flask", "run", "--debug"]
    redis = out.document["images"]["redis"]
    assert redis["entrypoint"] == ["docker-entrypoint.sh"] and redis["cmd"] == ["redis-server"]
    assert "envtool-images/redis/redis-entrypoint.sh" in out.files
    assert out.document["services"] == {"web": {"image": "web", "ports": ["8000:5000"]}, "redis": {"image": "redis"}}
    notes = "\n".join(out.notes)
    assert "asks for Python 3.10; Debian bookworm supplies 3.11" in notes and "apk add" in notes


def test_awesome_compose_flask_redis_multi_stage(tmp_path):
    out = _convert("awesome-flask-redis", "docker-compose.yml")
    web = out.document["images"]["web"]
    assert web["entrypoint"] == ["python3"] and web["cmd"] == ["app.py"]    # carried on from `builder`
    assert {"git", "bash", "adduser"} <= set(web["packages"])               # the heredocs' apk add, adduser
    assert {"copy": {"src": "requirements.txt", "dst": "/code/"}} in web["steps"]   # into the WORKDIR
    assert any("adduser --gecos '' --disabled-password --system --shell /bin/bash --ingroup docker vscode"
               in s.get("run", "") for s in web["steps"])
    svc = out.document["services"]["web"]
    assert svc["volumes"] == [".:/code"] and svc["depends_on"] == {"redis": "started"}
    notes = "\n".join(out.notes)
    assert "COPY --from=gloursdocker/docker" in notes and "'version'" not in notes
    assert "modules, plugins" in notes


def test_build_target_picks_the_stage():
    d = DATA / "compose" / "awesome-flask-redis"
    out = convert({"services": {"web": {"build": {"context": ".", "target": "builder"}}}}, d)
    assert "git" not in out.document["images"]["web"]["packages"]
    with pytest.raises(SpecError, match="build target 'nope'"):
        convert({"services": {"web": {"build": {"context": ".", "target": "nope"}}}}, d)


def test_run_is_one_shell_step_as_docker_runs_it(tmp_path):
    d = project(tmp_path, "services:\n  app:\n    build: .\n", dockerfile='''\
FROM debian:bookworm
WORKDIR /srv
RUN python -c 'import sys; print(1)'
RUN cd sub && make
RUN if [ -f x ]; then echo yes; \\
    else echo no; fi
RUN <<EOT bash
set -e
echo "$HOME"
EOT
RUN <<EOT
echo one
EOT
RUN ["echo", "exec form"]
''')
    out = imported(d)
    runs = [s for s in out.document["images"]["app"]["steps"] if "run" in s]
    assert [r["run"] for r in runs] == [
        "python -c 'import sys; print(1)'", "cd sub && make",
        "if [ -f x ]; then echo yes;     else echo no; fi",
        '<<EOT bash\nset -e\necho "$$HOME"\nEOT\n', "echo one\n", "echo 'exec form'"]
    assert all(r["workdir"] == "/srv" for r in runs)
    doc = valid(out, d)        # $$ reaches the shell as $: nothing of the importing host's environment
    assert doc["images"]["app"]["steps"][3]["run"].endswith('echo "$$HOME"\nEOT\n')
    assert load(directory=d).project.images["app"].steps[3].run == '<<EOT bash\nset -e\necho "$HOME"\nEOT\n'


def test_variables_args_and_env_expand_as_docker_does(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/host/only/bin")
    d = project(tmp_path, "services:\n  app:\n    build:\n      context: .\n      args:\n        VERSION: '2.0'\n",
                dockerfile='''\
ARG BASE=bookworm
FROM debian:${BASE}
ARG VERSION=1.0
ARG UNUSED
ENV VIRTUAL_ENV=/opt/venv
ENV PATH="$VIRTUAL_ENV/bin:$PATH" APP_VERSION=$VERSION LITERAL='$NOT'
WORKDIR /app/$VERSION
RUN echo $VERSION > /version
COPY --chown=nobody:nogroup --chmod=640 app.conf ./
''', **{"app.conf": "x"})
    out = imported(d)
    app = out.document["images"]["app"]
    assert app["env"] == {"VIRTUAL_ENV": "/opt/venv",
                          "PATH": "/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                          "APP_VERSION": "2.0", "LITERAL": "$$NOT"}
    assert app["workdir"] == "/app/2.0"
    assert {"run": "export VERSION=2.0; echo $$VERSION > /version", "workdir": "/app/2.0"} in app["steps"]
    assert {"copy": {"src": "app.conf", "dst": "/app/2.0/", "chown": "nobody:nogroup", "mode": 0o640}} in app["steps"]
    valid(out, d)
    loaded = load(directory=d).project.images["app"]
    assert loaded.env["PATH"].startswith("/opt/venv/bin:/usr/local/sbin") and loaded.env["LITERAL"] == "$NOT"


def test_expand():
    v = {"A": "1", "E": ""}
    assert expand("${A}x$A'$A'\"$A\"", v) == "1x1$A1"
    assert expand("${E:-dflt}${A:+alt}${MISSING}", v) == "dfltalt"
    assert expand(r"a\ b\$A", v) == "a b$A"


def test_multi_stage_go_and_node_builds(tmp_path):
    d = project(tmp_path, "services:\n  api:\n    build: .\n    ports: ['8080:8080']\n", dockerfile='''\
FROM golang:1.19 AS build
WORKDIR /src
COPY go.mod main.go ./
RUN CGO_ENABLED=0 go build -o /out/api .
FROM debian:bookworm-slim
COPY --from=build /out/api /usr/local/bin/api
USER nobody
HEALTHCHECK --interval=5s --retries=2 CMD ["api", "-check"]
STOPSIGNAL SIGINT
CMD ["api"]
''', **{"go.mod": "module x\n", "main.go": "package main\n"})
    out = imported(d)
    images = out.document["images"]
    assert set(images) == {"api", "api-build"}
    assert images["api-build"]["packages"][:1] == ["golang-go"]
    assert {"run": "CGO_ENABLED=0 go build -o /out/api .", "workdir": "/src"} in images["api-build"]["steps"]
    assert images["api"]["steps"] == [{"copy": {"from": "api-build", "src": "/out/api", "dst": "/usr/local/bin/api"}}]
    assert images["api"]["user"] == "nobody"
    svc = out.document["services"]["api"]
    assert svc["healthcheck"] == {"command": ["api", "-check"], "interval": "5s", "retries": 2}
    assert svc["stop_signal"] == "SIGINT"
    valid(out, d)


def test_a_service_named_like_an_image_gets_its_own_recipe(tmp_path):
    d = project(tmp_path, "services:\n  nginx:\n    build: .\n  cache:\n    image: nginx:1.22\n",
                dockerfile="FROM nginx\nCOPY site.conf /etc/nginx/conf.d/default.conf\n", **{"site.conf": "x"})
    out = imported(d)
    assert out.document["services"]["nginx"]["image"] != out.document["services"]["cache"]["image"]
    assert {"copy": {"src": "site.conf", "dst": "/etc/nginx/conf.d/default.conf"}} in \
        out.document["images"][out.document["services"]["nginx"]["image"]]["steps"]
    valid(out, d)


def test_output_elsewhere_keeps_copy_and_bind_paths_right(tmp_path):
    d = project(tmp_path, "services:\n  app:\n    build: ./app\n    volumes: ['./app/data:/data', '~/.cache:/c']\n",
                **{"app__Dockerfile": "FROM python:3.11\nCOPY . /srv\n", "app__main.py": "x"})
    out = imported(d, output_dir=tmp_path)
    assert {"copy": {"src": "app/", "dst": "/srv"}} in out.document["images"]["app"]["steps"]
    sub = tmp_path / "deploy"
    sub.mkdir()
    out = imported(d, output_dir=sub)
    assert "outside the directory envtool.toml is written to" in "\n".join(out.notes)
    out = imported(d, output_dir=tmp_path)
    assert out.document["services"]["app"]["volumes"] == ["./app/data:/data"]     # ~ is not ./~
    assert any(os.path.expanduser("~") in n for n in out.notes)


def test_official_images_keep_their_contract(tmp_path):
    d = project(tmp_path, '''
services:
  db:
    image: postgres:15-alpine
    environment: {POSTGRES_PASSWORD: example}
  maria:
    image: mariadb:10.6
  my:
    image: mysql:8
    command: --default-authentication-plugin=mysql_native_password
  web:
    image: nginx:latest
  php:
    image: php:8.2-apache
  wp:
    image: wordpress:latest
  py:
    image: python:3.7
''')
    out = imported(d)
    images = out.document["images"]
    assert images["postgres"]["entrypoint"] == ["docker-entrypoint.sh"]
    assert images["postgres"]["env"]["PGDATA"] == "/var/lib/postgresql/data"
    assert out.document["services"]["db"]["stop_signal"] == "SIGINT"
    assert out.document["services"]["maria"]["image"] == out.document["services"]["my"]["image"] == "mariadb"
    assert images["nginx"]["cmd"] == ["nginx", "-g", "daemon off;"]
    assert images["php-apache"]["cmd"] == ["apache2-foreground"] and images["php-apache"]["workdir"] == "/var/www/html"
    assert "wordpress" in images["wordpress"]["packages"]
    notes = "\n".join(out.notes)
    assert "'mariadb:10.6' asks for MariaDB 10.6; Debian bookworm supplies 10.11" in notes
    assert "'python:3.7' asks for Python 3.7" in notes and "MySQL is not in Debian" in notes
    assert "'postgres:15-alpine' asks for" not in notes                # 15 is what Debian has
    valid(out, d)
    assert (d / "envtool-images/postgres/postgres-entrypoint.sh").read_text().startswith("#!/bin/bash")


def test_an_image_without_translation_names_the_service_and_line(tmp_path):
    d = project(tmp_path, "services:\n  web:\n    image: nginx\n  db:\n    image: mongo:6\n")
    with pytest.raises(SpecError) as e:
        imported(d)
    assert "compose.yaml:5" in str(e.value.location) and "MongoDB is not packaged in Debian" in e.value.message
    assert "--keep-registry-images" in (e.value.hint or "") and "docker.io/library/mongo:6" in (e.value.hint or "")
    out = imported(d, keep_registry=True)
    assert out.document["services"]["db"]["image"] == "docker.io/library/mongo:6"
    d2 = project(tmp_path / "x", "services:\n  app:\n    image: ghcr.io/team/app:1\n")
    assert imported(d2).document["services"]["app"]["image"] == "ghcr.io/team/app:1"


def test_compose_keys(tmp_path):
    d = project(tmp_path, '''
x-common: &common
  restart: always
services:
  base:
    image: redis
    environment: {A: "1"}
    ports: ["6379"]
  cache:
    <<: *common
    extends: base
    environment: {B: "2"}
    container_name: my-cache
    networks:
      back: {aliases: [kv]}
  web:
    image: nginx
    ports: ["127.0.0.1:8000-8002:80-82/tcp", "9000-9001"]
    links: ["cache:redis-host"]
    expose: ["80"]
    secrets: [db_pw, {source: api_key, target: key.txt, mode: 0400}]
  debug:
    image: redis
    profiles: [debug]
volumes:
  data: {external: true}
networks:
  back: {}
secrets:
  db_pw: {file: ./db_pw.txt}
  api_key: {environment: API_KEY}
configs:
  c: {file: ./c}
''', **{"db_pw.txt": "pw"})
    out = imported(d)
    s = out.document["services"]
    assert "debug" not in s
    assert s["cache"]["environment"] == {"A": "1", "B": "2"} and s["cache"]["restart"] == "always"
    assert s["cache"]["ports"] == ["6379"] and sorted(s["cache"]["aliases"]) == ["kv", "my-cache", "redis-host"]
    assert s["web"]["ports"] == ["127.0.0.1:8000:80/tcp", "127.0.0.1:8001:81/tcp", "127.0.0.1:8002:82/tcp",
                                 "9000", "9001"]
    assert s["web"]["secrets"] == [{"source": "db_pw", "mode": 0o444},
                                   {"source": "api_key", "target": "key.txt", "mode": 0o400}]
    assert out.document["secrets"] == {"db_pw": {"file": "db_pw.txt"}, "api_key": {"environment": "API_KEY"}}
    notes = "\n".join(out.notes)
    assert s["cache"]["networks"] == ["back"] and "networks" not in s["web"]
    assert out.document["networks"] == {"back": {}}
    for said in ("profiles ['debug']", "volume 'data' is external", "expose is not needed",
                 "top-level configs", "container_name 'my-cache'"):
        assert said in notes, said
    doc = valid(out, d)
    assert doc["services"]["web"]["secrets"][1]["mode"] == 0o400


def test_every_unconvertible_key_is_reported(tmp_path):
    compose = {"services": {"app": {"image": "example.org/team/app:1", "privileged": True,
                                    "healthcheck": {"test": "curl -f localhost", "interval": "5s"},
                                    "deploy": {"replicas": 2, "resources": {"limits": {"memory": "256m"}}},
                                    "environment": ["A=1", "B"], "restart": "on-failure:3", "frobnicate": 1}}}
    out = convert(compose, tmp_path)
    app = out.document["services"]["app"]
    assert app["image"] == "example.org/team/app:1" and app["replicas"] == 2
    assert app["resources"] == {"memory": "256M"} and app["restart"] == "on-failure"
    assert app["healthcheck"] == {"command": ["sh", "-c", "curl -f localhost"], "interval": "5s"}
    assert app["environment"] == {"A": "1", "B": "${B}"}
    notes = "\n".join(out.notes)
    assert "'privileged': containers never get all capabilities" in notes
    assert "'frobnicate' is not converted" in notes and "kept as the registry reference" in notes


def test_no_services_is_an_error(tmp_path):
    with pytest.raises(SpecError, match="no services"):
        convert({"version": "3"}, tmp_path)


def test_import_cli_writes_a_valid_file_and_refuses_to_overwrite(tmp_path):
    d = tmp_path / "p"
    shutil.copytree(DATA / "compose" / "flask-redis", d)
    run = [sys.executable, "-m", "envtool", "import", str(d / "compose.yaml")]
    first = subprocess.run(run, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert "redis:alpine" in first.stderr and (d / "envtool.toml").exists()
    assert (d / "envtool-images" / "redis" / "redis-entrypoint.sh").stat().st_mode & 0o111
    assert subprocess.run([sys.executable, "-m", "envtool", "-C", str(d), "validate"]).returncode == 0
    again = subprocess.run(run, capture_output=True, text=True)
    assert again.returncode == 2 and "already exists" in again.stderr
    (d / "bad.yaml").write_text("services:\n  web: [\n")
    bad = subprocess.run([sys.executable, "-m", "envtool", "import", str(d / "bad.yaml")], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "bad.yaml:" in bad.stderr and "invalid YAML" in bad.stderr
    (d / "mongo.yaml").write_text("services:\n  db:\n    image: mongo\n")
    refused = subprocess.run([sys.executable, "-m", "envtool", "import", str(d / "mongo.yaml"), "-o",
                              str(tmp_path / "out")], capture_output=True, text=True)
    assert refused.returncode == 2 and "mongo.yaml:3" in refused.stderr
    assert not (tmp_path / "out" / "envtool.toml").exists()


def test_update_config_is_imported_and_what_has_no_meaning_here_is_said(tmp_path):
    compose = {"services": {"app": {"image": "example.org/team/app:1", "deploy": {"update_config": {
        "parallelism": 2, "order": "start-first", "monitor": "30s", "failure_action": "continue", "delay": "5s"}}}}}
    out = convert(compose, tmp_path)
    assert out.document["services"]["app"]["update"] == {"order": "start-first", "parallelism": 2,
                                                         "monitor": "30s", "failure_action": "pause"}
    notes = "\n".join(out.notes)
    assert "failure_action continue is not supported" in notes and "update_config.delay is not converted" in notes


def test_a_dockerfile_from_an_official_image_keeps_its_environment(tmp_path):
    d = project(tmp_path, "services:\n  db:\n    build: .\n", dockerfile=
                "FROM postgres:15\nENV POSTGRES_DB=shop\nCOPY init.sql /docker-entrypoint-initdb.d/\n",
                **{"init.sql": "select 1;"})
    out = imported(d)
    db = out.document["images"]["db"]
    assert db["env"]["PGDATA"] == "/var/lib/postgresql/data" and db["env"]["POSTGRES_DB"] == "shop"
    assert db["env"]["PATH"].startswith("/usr/lib/postgresql/15/bin:")
    assert db["entrypoint"] == ["docker-entrypoint.sh"] and db["cmd"] == ["postgres"]
    assert {"copy": {"src": "init.sql", "dst": "/docker-entrypoint-initdb.d/"}} in db["steps"]
    valid(out, d)
