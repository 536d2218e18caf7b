"""Kubernetes and Compose export of every example: strict Kubernetes schema validation, Kustomize
rendering of each environment, and the Compose tools' own parsers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from envtool import api
from envtool.release import k8s
from envtool.release.compose_out import compose
from envtool.release.output import yaml_text
from tests.conftest import REPO

EXAMPLES = sorted(p.parent for p in (REPO / "examples").glob("*/envtool.toml"))
VALIDATE = Path(sys.executable).parent / "kubernetes-validate"


def _export(example: Path) -> k8s.Export:
    base = api.load_project(None, str(example))
    envs = {e: api.load_project(None, str(example), e).project for e in base.project.environments}
    digests = {s.image: "sha256:" + f"{i:064x}" for i, s in enumerate(base.project.services.values())}
    return k8s.export(base.project, envs, digests, "registry.example:5000")


def _write(ex: k8s.Export, out: Path) -> None:
    for rel, docs in ex.files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(yaml_text(docs if isinstance(docs, list) else [docs]))


def _validate(*files: Path) -> None:
    proc = subprocess.run([str(VALIDATE), "--strict", "--no-warn", *map(str, files)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _apply(doc, ops):
    """A JSON 6902 applier (add/remove/replace), enough to check the overlays without kustomize."""
    doc = json.loads(json.dumps(doc))
    for op in ops:
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        target = doc
        for p in parents:
            target = target[int(p)] if isinstance(target, list) else target[p]
        key = int(last) if isinstance(target, list) else last
        if op["op"] == "remove":
            del target[key]
        else:
            target[key] = op["value"]
    return doc


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_exports_valid_manifests(example, tmp_path):
    ex = _export(example)
    _write(ex, tmp_path)
    docs = [p for p in tmp_path.rglob("*.yaml") if p.name != "kustomization.yaml"]
    assert docs
    _validate(*docs)
    base = {(d["kind"], d["metadata"]["name"]): d for p in (tmp_path / "base").glob("*.yaml")
            if p.name != "kustomization.yaml" for d in yaml.safe_load_all(p.read_text())}
    for overlay in sorted((tmp_path / "overlays").glob("*")) if (tmp_path / "overlays").exists() else []:
        kust = yaml.safe_load((overlay / "kustomization.yaml").read_text())
        rendered = dict(base)
        for patch in kust.get("patches", []):
            key = (patch["target"]["kind"], patch["target"]["name"])
            rendered[key] = _apply(rendered[key], json.loads(patch["patch"]))
        out = overlay / "rendered.json.yaml"
        out.write_text(yaml_text(list(rendered.values())))
        _validate(out)
        out.unlink()


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_kustomize_renders_every_environment(example, tmp_path):
    _write(_export(example), tmp_path)
    targets = [tmp_path / "base", *sorted((tmp_path / "overlays").glob("*"))] if (
        tmp_path / "overlays").exists() else [tmp_path / "base"]
    for target in targets:
        proc = subprocess.run(["kubectl", "kustomize", str(target)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        out = tmp_path / f"{target.name}.rendered.yaml"
        out.write_text(proc.stdout)
        _validate(out)
        images = {d["spec"]["template"]["spec"]["containers"][0]["image"] for d in yaml.safe_load_all(proc.stdout)
                  if d["kind"] in ("Deployment", "Job")}
        assert images and all(i.startswith("registry.example:5000/") and "@sha256:" in i for i in images)


def test_shop_mapping():
    ex = _export(REPO / "examples" / "shop")
    api_docs = {d["kind"]: d for d in ex.files["base/api.yaml"]}
    pod = api_docs["Deployment"]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["readinessProbe"]["failureThreshold"] == 30 and c["readinessProbe"]["periodSeconds"] == 1
    assert c["resources"]["limits"] == {"memory": "256Mi"}
    assert pod["initContainers"][0]["command"][-1].startswith("until getent hosts redis")
    assert api_docs["Service"]["spec"]["clusterIP"] == "None"
    web = {(d["kind"], d["metadata"]["name"]): d for d in ex.files["base/web.yaml"]}
    lb = web[("Service", "web-published")]["spec"]
    assert lb["type"] == "LoadBalancer" and lb["ports"][0]["port"] == 8080 and lb["ports"][0]["targetPort"] == 80
    prod = ex.files["overlays/production/kustomization.yaml"]
    ops = json.loads(prod["patches"][0]["patch"])
    assert {"op": "replace", "path": "/spec/replicas", "value": 3} in ops
    assert any("api: resources.pids" in n for n in ex.notes)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=4),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                               st.text(alphabet="ab/~", max_size=3), inner, max_size=3), max_leaves=12)


@settings(deadline=None)
@given(st.dictionaries(st.text(alphabet="ab/~", max_size=3), json_values, max_size=4),
       st.dictionaries(st.text(alphabet="ab/~", max_size=3), json_values, max_size=4))
def test_json_patch_turns_a_into_b(a, b):
    assert _apply(a, k8s.json_patch(a, b)) == b


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_compose_export_is_accepted_by_the_compose_tools(example, tmp_path):
    loaded = api.load_project(None, str(example), None)
    digests = {s.image: "sha256:" + "a" * 64 for s in loaded.project.services.values()}
    doc, _ = compose(loaded.project, digests, "localhost:5000")
    f = tmp_path / "compose.yaml"
    f.write_text(yaml_text([doc]))
    for svc in doc["services"].values():
        assert svc["image"].startswith("localhost:5000/") and svc["image"].endswith("@sha256:" + "a" * 64)
    tools = [[str(Path(sys.executable).parent / "podman-compose"), "-f", str(f), "config"],
             ["docker-compose", "-f", str(f), "config", "-q"]]
    ran = 0
    for tool in tools:
        if shutil.which(tool[0]) is None:
            continue
        proc = subprocess.run(tool, capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        ran += 1
    assert ran, "neither podman-compose nor docker-compose is installed"


def test_update_settings_are_exported_to_kubernetes_and_compose(tmp_path):
    (tmp_path / "envtool.toml").write_text("""
[project]
name = "u"
[services.web]
image = "docker.io/library/nginx@sha256:""" + "1" * 64 + """"
replicas = 3
ports = ["8080:80"]
update = { parallelism = 2, monitor = "90s" }
[services.db]
image = "docker.io/library/postgres@sha256:""" + "2" * 64 + """"
volumes = ["data:/var/lib/postgresql/data"]
restart = "always"
update = { failure_action = "pause" }
[volumes.data]
""")
    ex = _export(tmp_path)
    web = next(d for d in ex.files["base/web.yaml"] if d["kind"] == "Deployment")["spec"]
    assert web["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2, "maxUnavailable": 0}}
    assert web["progressDeadlineSeconds"] == 90
    db = next(d for d in ex.files["base/db.yaml"] if d["kind"] == "Deployment")["spec"]
    assert db["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}     # stop-first: the volume
    assert any("kubectl rollout undo" in n for n in ex.notes)
    loaded = api.load_project(None, str(tmp_path))
    doc, _ = compose(loaded.project, {s.image: "sha256:" + "3" * 64 for s in loaded.project.services.values()},
                     "localhost:5000")
    assert doc["services"]["web"]["deploy"]["update_config"] == {
        "parallelism": 2, "order": "start-first", "monitor": "90s", "failure_action": "rollback"}
    assert doc["services"]["db"]["deploy"]["update_config"]["order"] == "stop-first"


SECRET_STACK = """
[project]
name = "shop"
[secrets.db-password]
file = "secrets/db-password.txt"
[secrets.api-key]
environment = "SHOP_API_KEY"
[services.db]
image = "docker.io/library/postgres@sha256:""" + "2" * 64 + """"
secrets = ["db-password"]
environment = { POSTGRES_PASSWORD_FILE = "/run/secrets/db-password" }
[services.api]
image = "docker.io/library/python@sha256:""" + "3" * 64 + """"
secrets = [{ source = "db-password", target = "pg", mode = 0o440 }, "api-key"]
depends_on = { db = "started" }
ports = ["8000:8000"]
[environments.production.secrets.db-password]
file = "/etc/shop/db-password"
"""


def test_secrets_are_exported_as_references_never_values(tmp_path, monkeypatch):
    (tmp_path / "envtool.toml").write_text(SECRET_STACK)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "db-password.txt").write_text("hunter2-the-value\n")
    monkeypatch.setenv("SHOP_API_KEY", "key-value-from-env")
    ex = _export(tmp_path)
    _write(ex, tmp_path / "k8s")
    text = "".join(p.read_text() for p in (tmp_path / "k8s").rglob("*.yaml")) + "\n".join(ex.notes)
    assert "hunter2" not in text and "key-value-from-env" not in text
    _validate(*[p for p in (tmp_path / "k8s").rglob("*.yaml") if p.name != "kustomization.yaml"])
    pod = next(d for d in ex.files["base/api.yaml"] if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["/run/secrets/pg"]["readOnly"] and mounts["/run/secrets/pg"]["subPath"] == "pg"
    assert "/run/secrets/api-key" in mounts
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["secret-db-password"]["secret"] == {"secretName": "shop-db-password",
                                                    "items": [{"key": "value", "path": "pg", "mode": 0o440}]}
    assert any("kubectl create secret generic shop-db-password --from-file=value=secrets/db-password.txt" in n
               for n in ex.notes)
    assert any("(production)" in n and "--from-file=value=/etc/shop/db-password" in n for n in ex.notes)
    assert any('--from-literal=value="$SHOP_API_KEY"' in n for n in ex.notes)

    loaded = api.load_project(None, str(tmp_path))
    doc, _ = compose(loaded.project, {s.image: "sha256:" + "4" * 64 for s in loaded.project.services.values()},
                     "localhost:5000")
    assert doc["secrets"] == {"api-key": {"environment": "SHOP_API_KEY"},
                              "db-password": {"file": "secrets/db-password.txt"}}
    assert doc["services"]["db"]["secrets"] == ["db-password"]
    assert doc["services"]["api"]["secrets"] == [{"source": "db-password", "target": "pg", "mode": 0o440}, "api-key"]
    assert "hunter2" not in yaml_text([doc]) and "key-value-from-env" not in yaml_text([doc])
    prod = api.load_project(None, str(tmp_path), "production")
    doc, notes = compose(prod.project, {s.image: "sha256:" + "4" * 64 for s in prod.project.services.values()},
                         "localhost:5000")
    assert doc["secrets"]["db-password"] == {"file": "/etc/shop/db-password"}
    f = tmp_path / "compose.yaml"
    f.write_text(yaml_text([doc]))
    pc = Path(sys.executable).parent / "podman-compose"      # the Compose spec's `environment:` secret
    proc = subprocess.run([str(pc), "-f", str(f), "config"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert any("docker secret create" in n for n in notes)    # docker-compose 1.x and Swarm: external


SWARM_STACK = SECRET_STACK + """
[services.api.update]
order = "start-first"
[services.cron]
image = "docker.io/library/python@sha256:""" + "3" * 64 + """"
command = ["python3", "-c", "print(1)"]
volumes = [{ type = "tmpfs", target = "/scratch" }]
resources = { pids = 64 }
aliases = ["jobs"]
"""


def test_swarm_stack_file(tmp_path):
    (tmp_path / "envtool.toml").write_text(SWARM_STACK)
    loaded = api.load_project(None, str(tmp_path), "production")
    doc, notes = compose(loaded.project, {s.image: "sha256:" + "5" * 64 for s in loaded.project.services.values()},
                         "localhost:5000", swarm=True)
    assert doc["version"] == "3.9"                  # docker stack deploy (20.10) needs a 3.x version
    assert doc["networks"] == {"default": {"driver": "overlay"}}
    svcs = doc["services"]
    for s in svcs.values():                           # no IPVS: DNS round robin, no depends_on (Swarm ignores it)
        assert s["deploy"]["endpoint_mode"] == "dnsrr" and "depends_on" not in s and "restart" not in s
    api_ = svcs["api"]
    assert api_["ports"] == [{"target": 8000, "published": 8000, "protocol": "tcp", "mode": "host"}]
    assert api_["deploy"]["update_config"]["order"] == "stop-first"        # two tasks cannot hold port 8000
    assert api_["deploy"]["rollback_config"]["order"] == "stop-first"
    assert api_["deploy"]["restart_policy"] == {"condition": "on-failure"}   # restart "no" + depends_on
    assert svcs["db"]["deploy"]["restart_policy"] == {"condition": "none"}
    cron = svcs["cron"]
    assert cron["volumes"] == [{"type": "tmpfs", "target": "/scratch"}] and "tmpfs" not in cron
    assert cron["deploy"]["resources"] == {"limits": {"pids": 64}} and "pids_limit" not in cron
    assert cron["networks"] == {"default": {"aliases": ["jobs"]}}
    assert doc["secrets"]["api-key"] == {"external": True, "name": "api-key"}     # Swarm has no environment:
    assert doc["secrets"]["db-password"] == {"file": "/etc/shop/db-password"}
    assert any("docker secret create api-key" in n for n in notes)
    assert any("ignores depends_on (api)" in n for n in notes)
    assert any("api: Swarm cannot hold host-mode port 8000" in n for n in notes)


def test_networks_and_aliases_are_exported(tmp_path):
    (tmp_path / "envtool.toml").write_text("""
[project]
name = "n"
[networks.front]
[networks.back]
[services.web]
image = "docker.io/library/nginx@sha256:""" + "1" * 64 + """"
networks = ["front", "back"]
[services.db]
image = "docker.io/library/postgres@sha256:""" + "2" * 64 + """"
networks = ["back"]
aliases = ["database"]
""")
    loaded = api.load_project(None, str(tmp_path))
    doc, _ = compose(loaded.project, {s.image: "sha256:" + "3" * 64 for s in loaded.project.services.values()},
                     "localhost:5000")
    assert doc["networks"] == {"back": {}, "front": {}}
    assert doc["services"]["web"]["networks"] == ["front", "back"]
    assert doc["services"]["db"]["networks"] == {"back": {"aliases": ["database"]}}
    swarm, _ = compose(loaded.project, {s.image: "sha256:" + "3" * 64 for s in loaded.project.services.values()},
                       "localhost:5000", swarm=True)
    assert swarm["networks"] == {"back": {"driver": "overlay"}, "front": {"driver": "overlay"}}
