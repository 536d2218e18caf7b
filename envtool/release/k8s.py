"""`envtool export kubernetes`: a Kustomize base plus one overlay per environment.  Pure: resolved
stacks (spec Projects) in, {relative path: document} out, plus notes on what has no equivalent.

How envtool's words map (docs/promotion.md has the table):
  service           Deployment (Kubernetes restarts whatever the policy; a one-off with restart =
                    "no", no ports, no healthcheck and no dependents is a Job), replicas, env, resources, probes from the
                    healthcheck, capabilities, read-only root, grace period
  service name      headless Service of the same name: DNS resolves to every ready replica, on
                    every port, as envtool's own DNS does
  ports             a LoadBalancer Service <name>-published (published → target)
  named volume      PersistentVolumeClaim
  depends_on        init containers: started/healthy wait until the name resolves (a headless
                    Service lists only ready pods); completed runs the one-off service (restart =
                    "no") in the dependent's pod first, instead of as a workload of its own
  image             <registry>/<project>/<image>@<locked digest> (what `envtool push` uploads)
Environments are JSON 6902 patches of the base, inline in each overlay's kustomization.yaml.
"""

from __future__ import annotations

import json
import re
from typing import Any

from envtool._util.record import dataclass, field
from envtool._util.units import parse_size
from envtool.runtime.caps import effective_set
from envtool.spec.imageref import ImageRef
from envtool.spec.model import Project, Service

PART_OF = "app.kubernetes.io/part-of"
NAME = "app.kubernetes.io/name"


@dataclass
class Export:
    files: dict[str, Any] = field(default_factory=dict)      # path → document or list of documents
    notes: list[str] = field(default_factory=list)


def dns_name(name: str) -> str:
    """A DNS-1035 label: lowercase letters, digits and '-', starting with a letter, ≤ 63."""
    out = re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-")
    if not out or not out[0].isalpha():
        out = "s-" + out
    return out[:63].rstrip("-")


def image_name(project: str, ref: str) -> str:
    """The repository an image is pushed to (without registry): recipes as <project>/<recipe>."""
    parsed = ImageRef.parse(ref)
    if parsed.kind == "oci-archive":
        return f"{project}/{dns_name(parsed.name.split('.')[0])}"
    if parsed.kind == "registry":                      # a registry reference: keep its repository
        return parsed.repository
    return f"{project}/{ref}"


def _quantity_memory(n: int) -> str:
    for unit, size in (("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def _seconds(v: float, minimum: int = 1) -> int:
    return max(minimum, round(v))


def _probe(svc: Service) -> dict[str, Any] | None:
    hc = svc.healthcheck
    if hc is None or hc.disable:
        return None
    return {"exec": {"command": list(hc.command)}, "periodSeconds": _seconds(hc.interval),
            "timeoutSeconds": _seconds(hc.timeout), "failureThreshold": hc.retries,
            "initialDelaySeconds": _seconds(hc.start_period, 0)}


def _container(project: str, name: str, svc: Service, images: dict[str, str], notes: list[str],
               volume_mounts: list[dict[str, Any]]) -> dict[str, Any]:
    c: dict[str, Any] = {"name": dns_name(name), "image": image_name(project, svc.image)}
    if svc.entrypoint is not None:
        c["command"] = list(svc.entrypoint)
    if svc.command is not None:
        c["args"] = list(svc.command)
    if svc.workdir:
        c["workingDir"] = svc.workdir
    if svc.environment:
        c["env"] = [{"name": k, "value": v} for k, v in sorted(svc.environment.items())]
    ports = sorted({(p.target, p.protocol.value) for p in svc.ports})
    if ports:
        c["ports"] = [{"containerPort": t, "protocol": proto.upper()} for t, proto in ports]
    limits: dict[str, Any] = {}
    if svc.resources.memory:
        limits["memory"] = _quantity_memory(parse_size(svc.resources.memory))
    if svc.resources.cpus:
        limits["cpu"] = f"{round(svc.resources.cpus * 1000)}m"
    if limits:
        c["resources"] = {"limits": limits}
    if svc.resources.pids:
        notes.append(f"{name}: resources.pids has no per-container equivalent (set the kubelet's podPidsLimit)")
    probe = _probe(svc)
    if probe:
        c["readinessProbe"] = probe
        c["livenessProbe"] = dict(probe)
    sec: dict[str, Any] = {"capabilities": {"drop": ["ALL"], "add": sorted(c.removeprefix("CAP_") for c in effective_set(svc.cap_add, svc.cap_drop))}}
    if svc.read_only:
        sec["readOnlyRootFilesystem"] = True
    if svc.user:
        uid, _, gid = svc.user.partition(":")
        if uid.isdigit() and (not gid or gid.isdigit()):
            sec["runAsUser"] = int(uid)
            if gid:
                sec["runAsGroup"] = int(gid)
        else:
            notes.append(f"{name}: user {svc.user!r} is a name; Kubernetes takes numeric ids (the image's "
                         "own USER still applies)")
    c["securityContext"] = sec
    if volume_mounts:
        c["volumeMounts"] = volume_mounts
    return c


def _volumes(name: str, svc: Service, notes: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    mounts, volumes = [], []
    for i, v in enumerate(svc.volumes):
        if v.type == "bind":
            notes.append(f"{name}: bind mount {v.source}:{v.target} is not exported (copy the files into the "
                         "image with a recipe's copy, or use a ConfigMap)")
            continue
        vol_name = dns_name(v.source) if v.type == "volume" and v.source else f"scratch-{i}"
        if v.type == "volume" and v.source:
            volumes.append({"name": vol_name, "persistentVolumeClaim": {"claimName": dns_name(v.source)}})
        else:
            volumes.append({"name": vol_name, "emptyDir": {"medium": "Memory"} if v.type == "tmpfs" else {}})
        mounts.append({"name": vol_name, "mountPath": v.target, **({"readOnly": True} if v.read_only else {})})
    return mounts, volumes


def secret_name(project: str, secret: str) -> str:
    """The Kubernetes Secret a project's secret is read from (created by the operator, never exported)."""
    return dns_name(f"{project}-{secret}")


def _secrets(project: str, name: str, svc: Service, notes: list[str]
             ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each secret as a file /run/secrets/TARGET from a Secret volume (key `value`): a reference,
    never the value.  uid/gid have no per-file equivalent (the pod's fsGroup covers the group)."""
    mounts: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    for ref in svc.secrets:
        target = ref.target or ref.source
        vol = dns_name(f"secret-{ref.source}")[:63]
        if not any(v["name"] == vol for v in volumes):
            volumes.append({"name": vol, "secret": {"secretName": secret_name(project, ref.source),
                                                    "items": [{"key": "value", "path": target, "mode": ref.mode}]}})
        mounts.append({"name": vol, "mountPath": f"/run/secrets/{target}", "subPath": target, "readOnly": True})
        if ref.uid is not None or ref.gid is not None:
            notes.append(f"{name}: secret {ref.source}: uid/gid have no per-file equivalent in a Secret volume "
                         "(set the pod's securityContext.fsGroup)")
    return mounts, volumes


def secret_notes(project: Project, env: str | None) -> list[str]:
    """How to create each Secret the manifests refer to, from the source this environment names."""
    out = []
    for sname, src in sorted(project.secrets.items()):
        if not any(r.source == sname for svc in project.services.values() for r in svc.secrets):
            continue
        where = f"--from-file=value={src.file}" if src.file else f"--from-literal=value=\"${src.environment}\""
        out.append(f"secret {sname}{f' ({env})' if env else ''}: create it in the cluster before applying: "
                   f"kubectl create secret generic {secret_name(project.name, sname)} {where}")
    return out


def _labels(project: str, name: str) -> dict[str, str]:
    return {NAME: dns_name(name), PART_OF: project}


def _runs_first(project: Project) -> set[str]:
    """One-off services (restart = "no") that others wait to complete: they become init containers."""
    return {dep for svc in project.services.values() for dep, cond in svc.depends_on.items()
            if cond.value == "completed" and project.services[dep].restart.value == "no"}


def _is_task(project: Project, name: str) -> bool:
    """A one-off (restart = "no", no ports, no healthcheck, nobody waits for it to run): a Job."""
    svc = project.services[name]
    waited = any(name in other.depends_on and other.depends_on[name].value != "completed"
                 for other in project.services.values())
    return svc.restart.value == "no" and not svc.ports and svc.healthcheck is None and not waited


def _strategy(sname: str, svc: Any, notes: list[str]) -> dict[str, Any]:
    """[update] as a Deployment's rolling update: start-first surges (new pods first, none taken
    away before they are ready), stop-first takes pods away first; monitor is the deadline."""
    order, _ = svc.update_order()
    n = svc.update.parallelism
    rolling = {"maxSurge": n, "maxUnavailable": 0} if order == "start-first" else {"maxSurge": 0, "maxUnavailable": n}
    note = ("update.failure_action = rollback: Kubernetes marks a rollout that misses progressDeadlineSeconds "
            "(update.monitor) failed but does not roll it back; `kubectl rollout undo deployment/NAME` does")
    if svc.update.failure_action.value == "rollback" and note not in notes:
        notes.append(note)
    return {"strategy": {"type": "RollingUpdate", "rollingUpdate": rolling},
            "progressDeadlineSeconds": max(1, int(round(svc.update.monitor)))}


def resources(project: Project, images: dict[str, str], notes: list[str]) -> dict[str, list[dict[str, Any]]]:
    """{file stem: [documents]} for one resolved stack."""
    name = project.name
    first = _runs_first(project)
    out: dict[str, list[dict[str, Any]]] = {}
    for sname, svc in project.services.items():
        if sname in first:
            continue
        mounts, volumes = _volumes(sname, svc, notes)
        secret_mounts, secret_volumes = _secrets(name, sname, svc, notes)
        mounts += secret_mounts
        volumes += secret_volumes
        container = _container(name, sname, svc, images, notes, mounts)
        init = []
        for dep, cond in sorted(svc.depends_on.items()):
            if dep in first:
                dep_svc = project.services[dep]
                dep_mounts, dep_vols = _volumes(dep, dep_svc, notes)
                dep_secret_mounts, dep_secret_vols = _secrets(name, dep, dep_svc, notes)
                dep_mounts += dep_secret_mounts
                dep_vols += dep_secret_vols
                init.append(_container(name, dep, dep_svc, images, notes, dep_mounts))
                volumes += [v for v in dep_vols if v not in volumes]
            else:
                host = dns_name(dep)
                init.append({"name": f"wait-for-{host}"[:63], "image": container["image"],
                             "command": ["sh", "-c", f"until getent hosts {host}; do echo waiting for {host}; "
                                                     "sleep 1; done"]})
                if cond.value == "healthy" and project.services[dep].healthcheck is None:
                    notes.append(f"{sname}: waits for {dep} to be healthy, but {dep} has no healthcheck")
        pod: dict[str, Any] = {"containers": [container],
                               "terminationGracePeriodSeconds": _seconds(svc.stop_grace_period, 0)}
        if init:
            pod["initContainers"] = init
        if volumes:
            pod["volumes"] = volumes
        if svc.hostname:
            pod["hostname"] = dns_name(svc.hostname)
        if svc.stop_signal != "SIGTERM":
            notes.append(f"{sname}: stop_signal {svc.stop_signal} has no Kubernetes equivalent (SIGTERM is sent)")
        labels = _labels(name, sname)
        template = {"metadata": {"labels": labels}, "spec": pod}
        if _is_task(project, sname):
            pod["restartPolicy"] = "Never"
            out[dns_name(sname)] = [{"apiVersion": "batch/v1", "kind": "Job",
                                     "metadata": {"name": dns_name(sname), "labels": labels},
                                     "spec": {"backoffLimit": 0, "template": template}}]
            continue
        docs: list[dict[str, Any]] = [
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": dns_name(sname), "labels": labels},
             "spec": {"replicas": svc.replicas, "selector": {"matchLabels": labels}, "template": template,
                      **_strategy(sname, svc, notes)}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": dns_name(sname), "labels": labels},
             "spec": {"clusterIP": "None", "selector": labels}}]
        published = list(svc.ports)
        if published:
            docs.append({"apiVersion": "v1", "kind": "Service",
                         "metadata": {"name": f"{dns_name(sname)}-published"[:63], "labels": labels},
                         "spec": {"type": "LoadBalancer", "selector": labels, "ports": [
                             {"name": f"{p.protocol.value}-{p.published or p.target}", "protocol": p.protocol.value.upper(),
                              "port": p.published or p.target, "targetPort": p.target} for p in published]}})
        out[dns_name(sname)] = docs
    claims = [{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": dns_name(v), "labels": {PART_OF: name}},
               "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
              for v in sorted(project.volumes)]
    if claims:
        out["volumes"] = claims
    return out


# ---- overlays as JSON 6902 patches ---------------------------------------------------------------
def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def json_patch(a: Any, b: Any, path: str = "") -> list[dict[str, Any]]:
    """Operations that turn a into b: tables key by key, arrays of the same length item by item,
    anything else replaced whole."""
    if isinstance(a, dict) and isinstance(b, dict):
        ops: list[dict[str, Any]] = []
        for k in sorted(set(a) | set(b)):
            p = f"{path}/{_escape(str(k))}"
            if k not in b:
                ops.append({"op": "remove", "path": p})
            elif k not in a:
                ops.append({"op": "add", "path": p, "value": b[k]})
            else:
                ops += json_patch(a[k], b[k], p)
        return ops
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [op for i, (x, y) in enumerate(zip(a, b, strict=True)) for op in json_patch(x, y, f"{path}/{i}")]
    return [] if a == b else [{"op": "replace", "path": path, "value": b}]


def export(base: Project, environments: dict[str, Project], images: dict[str, str], registry: str) -> Export:
    """The whole tree: base/ and overlays/<env>/."""
    ex = Export()
    notes: list[str] = []
    base_docs = resources(base, images, notes)
    notes += secret_notes(base, None)
    for stem, docs in base_docs.items():
        ex.files[f"base/{stem}.yaml"] = docs
    refs = sorted({s.image for s in base.services.values()})
    ex.files["base/kustomization.yaml"] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "labels": [{"pairs": {PART_OF: base.name}, "includeSelectors": False}],
        "resources": [f"{stem}.yaml" for stem in base_docs],
        "images": [{"name": image_name(base.name, r), "newName": f"{registry.rstrip('/')}/{image_name(base.name, r)}",
                    "digest": images[r]} for r in refs if r in images]}
    for env, project in sorted(environments.items()):
        env_notes: list[str] = []
        env_docs = resources(project, images, env_notes)
        if project.secrets != base.secrets:
            env_notes += secret_notes(project, env)
        patches, extra = [], []
        for stem, docs in env_docs.items():
            before = {(d["kind"], d["metadata"]["name"]): d for d in base_docs.get(stem, [])}
            for d in docs:
                key = (d["kind"], d["metadata"]["name"])
                if key not in before:
                    extra.append(d)
                    continue
                ops = json_patch(before[key], d)
                if ops:
                    patches.append({"target": {"kind": d["kind"], "name": d["metadata"]["name"]},
                                    "patch": json.dumps(ops)})
        kust: dict[str, Any] = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                                "resources": ["../../base"]}
        if extra:
            ex.files[f"overlays/{env}/added.yaml"] = extra
            kust["resources"].append("added.yaml")
        if patches:
            kust["patches"] = patches
        ex.files[f"overlays/{env}/kustomization.yaml"] = kust
        notes += [n for n in env_notes if n not in notes]
    ex.notes = sorted(set(notes), key=notes.index)
    return ex
