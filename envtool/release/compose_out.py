"""`envtool export compose`: one resolved stack → a Compose file (pure) that docker compose,
podman-compose and `docker stack deploy` accept, with every image pinned by digest."""

from __future__ import annotations

from typing import Any

from envtool._util.units import parse_size
from envtool.release.k8s import image_name
from envtool.spec.model import Project

_CONDITION = {"started": "service_started", "healthy": "service_healthy", "completed": "service_completed_successfully"}


def _duration(seconds: float) -> str:
    return f"{seconds:g}s"


def compose(project: Project, images: dict[str, str], registry: str) -> tuple[dict[str, Any], list[str]]:
    notes: list[str] = []
    services: dict[str, Any] = {}
    for name, svc in project.services.items():
        s: dict[str, Any] = {"image": f"{registry.rstrip('/')}/{image_name(project.name, svc.image)}@{images[svc.image]}"}
        if svc.entrypoint is not None:
            s["entrypoint"] = list(svc.entrypoint)
        if svc.command is not None:
            s["command"] = list(svc.command)
        if svc.environment:
            s["environment"] = dict(sorted(svc.environment.items()))
        if svc.ports:
            s["ports"] = [f"{p.host_ip + ':' if p.host_ip else ''}{str(p.published) + ':' if p.published else ''}"
                          f"{p.target}/{p.protocol.value}" for p in svc.ports]
        if svc.depends_on:
            s["depends_on"] = {d: {"condition": _CONDITION[c.value]} for d, c in sorted(svc.depends_on.items())}
        if svc.restart.value != "no":
            s["restart"] = svc.restart.value
        deploy: dict[str, Any] = {}
        if svc.replicas != 1:
            deploy["replicas"] = svc.replicas
        limits: dict[str, Any] = {}
        if svc.resources.memory:
            n = parse_size(svc.resources.memory)
            limits["memory"] = f"{n >> 20}M" if n % (1 << 20) == 0 else f"{n}b"
        if svc.resources.cpus:
            limits["cpus"] = f"{svc.resources.cpus:g}"
        if limits:
            deploy["resources"] = {"limits": limits}
        order, _ = svc.update_order()
        deploy["update_config"] = {"parallelism": svc.update.parallelism, "order": order,
                                   "monitor": _duration(svc.update.monitor),
                                   "failure_action": svc.update.failure_action.value}
        if deploy:
            s["deploy"] = deploy
        if svc.resources.pids:
            s["pids_limit"] = svc.resources.pids
        hc = svc.healthcheck
        if hc is not None:
            s["healthcheck"] = ({"disable": True} if hc.disable else
                                {"test": ["CMD", *hc.command], "interval": _duration(hc.interval),
                                 "timeout": _duration(hc.timeout), "retries": hc.retries,
                                 "start_period": _duration(hc.start_period)})
        if svc.stop_signal != "SIGTERM":
            s["stop_signal"] = svc.stop_signal
        if svc.stop_grace_period != 10:
            s["stop_grace_period"] = _duration(svc.stop_grace_period)
        for key in ("read_only", "init"):
            if getattr(svc, key):
                s[key] = True
        for key in ("cap_add", "cap_drop"):
            if getattr(svc, key):
                s[key] = list(getattr(svc, key))
        for key, out in (("user", "user"), ("workdir", "working_dir"), ("hostname", "hostname")):
            if getattr(svc, key):
                s[out] = getattr(svc, key)
        vols = []
        for v in svc.volumes:
            mode = ":ro" if v.read_only else ""
            if v.type == "tmpfs":
                s.setdefault("tmpfs", []).append(v.target)
            elif v.source:
                vols.append(f"{v.source}:{v.target}{mode}")
                if v.type == "bind":
                    notes.append(f"{name}: bind mount {v.source} refers to files next to the Compose file")
            else:
                vols.append(v.target)
        if vols:
            s["volumes"] = vols
        if svc.secrets:
            s["secrets"] = [ref.source if (ref.target in (None, ref.source) and ref.uid is None and ref.gid is None
                                           and ref.mode == 0o400) else
                            {"source": ref.source, **({"target": ref.target} if ref.target else {}),
                             **({"uid": str(ref.uid)} if ref.uid is not None else {}),
                             **({"gid": str(ref.gid)} if ref.gid is not None else {}), "mode": ref.mode}
                            for ref in svc.secrets]
        services[name] = s
    # no `name:`, which docker-compose 1.x and Swarm refuse: the caller says it in a comment
    doc: dict[str, Any] = {"services": services}
    if project.volumes:
        doc["volumes"] = {v: {} for v in sorted(project.volumes)}
    used = sorted({r.source for svc in project.services.values() for r in svc.secrets})
    if used:                 # where each value comes from, never the value
        doc["secrets"] = {n: ({"file": project.secrets[n].file} if project.secrets[n].file else
                              {"environment": project.secrets[n].environment}) for n in used}
        if any(not (project.secrets[n].file or "/").startswith("/") for n in used):
            notes.append("secrets: a relative file is read next to the Compose file")
        for sec in used:
            if project.secrets[sec].environment:
                notes.append(f"secret {sec}: `environment:` is the Compose spec's (docker compose v2, podman-compose); "
                             f"for docker-compose 1.x or Swarm make it `external: true` after `printf %s "
                             f"\"${project.secrets[sec].environment}\" | docker secret create {sec} -`")
    return doc, notes
