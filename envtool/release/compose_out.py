"""`envtool export compose`: one resolved stack → a Compose file (pure) that docker compose and
podman-compose accept, or with `swarm` a stack file for `docker stack deploy`; every image is pinned
by digest.

Swarm differs where its meaning differs: services find each other by DNS round robin
(`endpoint_mode: dnsrr`, which needs no IPVS) on overlay networks, published ports are host-mode
(the routing mesh needs IPVS and cannot be used with dnsrr), restart and start order are Swarm's own
(`deploy.restart_policy`; `depends_on` is ignored by Swarm), and a service whose host port a second
task could not bind on the same node is updated stop-first."""

from __future__ import annotations

from typing import Any

from envtool._util.units import parse_size
from envtool.release.k8s import image_name
from envtool.spec.model import Project

_CONDITION = {"started": "service_started", "healthy": "service_healthy", "completed": "service_completed_successfully"}


def _duration(seconds: float) -> str:
    return f"{seconds:g}s"


_SWARM_RESTART = {"no": "none", "on-failure": "on-failure", "always": "any", "unless-stopped": "any"}


def _port(p: Any, swarm: bool) -> Any:
    if swarm:                     # long syntax: the only one that says mode: host
        return {"target": p.target, **({"published": p.published} if p.published else {}),
                "protocol": p.protocol.value, "mode": "host"}
    return (f"{p.host_ip + ':' if p.host_ip else ''}{str(p.published) + ':' if p.published else ''}"
            f"{p.target}/{p.protocol.value}")


def compose(project: Project, images: dict[str, str], registry: str,
            swarm: bool = False) -> tuple[dict[str, Any], list[str]]:
    notes: list[str] = []
    services: dict[str, Any] = {}
    ignored_order: list[str] = []
    for name, svc in project.services.items():
        s: dict[str, Any] = {"image": f"{registry.rstrip('/')}/{image_name(project.name, svc.image)}@{images[svc.image]}"}
        if svc.entrypoint is not None:
            s["entrypoint"] = list(svc.entrypoint)
        if svc.command is not None:
            s["command"] = list(svc.command)
        if svc.environment:
            s["environment"] = dict(sorted(svc.environment.items()))
        if svc.ports:
            s["ports"] = [_port(p, swarm) for p in svc.ports]
            if swarm and any(p.host_ip for p in svc.ports):
                notes.append(f"{name}: Swarm publishes on every address of the node; the host address of "
                             f"{', '.join(str(p.published) for p in svc.ports if p.host_ip)} is dropped")
        if svc.depends_on and swarm:
            ignored_order.append(name)
        elif svc.depends_on:
            s["depends_on"] = {d: {"condition": _CONDITION[c.value]} for d, c in sorted(svc.depends_on.items())}
        deploy: dict[str, Any] = {}
        if swarm:
            deploy["endpoint_mode"] = "dnsrr"
            condition = _SWARM_RESTART[svc.restart.value]
            if condition == "none" and svc.depends_on:     # Swarm's substitute for the start order
                condition = "on-failure"
            deploy["restart_policy"] = {"condition": condition}
        elif svc.restart.value != "no":
            s["restart"] = svc.restart.value
        if svc.replicas != 1 or swarm:
            deploy["replicas"] = svc.replicas
        limits: dict[str, Any] = {}
        if svc.resources.memory:
            n = parse_size(svc.resources.memory)
            limits["memory"] = f"{n >> 20}M" if n % (1 << 20) == 0 else f"{n}b"
        if svc.resources.cpus:
            limits["cpus"] = f"{svc.resources.cpus:g}"
        if svc.resources.pids and swarm:
            limits["pids"] = svc.resources.pids
        if limits:
            deploy["resources"] = {"limits": limits}
        order, _ = svc.update_order()
        fixed_ports = [p.published for p in svc.ports if p.published]
        if swarm and fixed_ports and order == "start-first":
            order = "stop-first"
            notes.append(f"{name}: Swarm cannot hold host-mode port {fixed_ports[0]} for two tasks on one node, "
                         "so its updates are stop-first (a gap while the new task starts)")
        if swarm and fixed_ports and svc.replicas > 1:
            notes.append(f"{name}: {svc.replicas} replicas with host-mode port {fixed_ports[0]}: one task per node "
                         "can bind it; put a load balancer in front or leave `published` out")
        deploy["update_config"] = {"parallelism": svc.update.parallelism, "order": order,
                                   "monitor": _duration(svc.update.monitor),
                                   "failure_action": svc.update.failure_action.value}
        if swarm and "monitor" not in svc.update.model_fields_set:
            # envtool's monitor is a deadline for readiness; Swarm's is a window watched after each
            # task is running (healthy, where there is a healthcheck): its own default (5s), not 60s
            del deploy["update_config"]["monitor"]
        if swarm:
            deploy["rollback_config"] = {"parallelism": svc.update.parallelism, "order": order}
        if deploy:
            s["deploy"] = deploy
        if svc.resources.pids and not swarm:
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
        vols: list[Any] = []
        for v in svc.volumes:
            mode = ":ro" if v.read_only else ""
            if v.type == "tmpfs" and swarm:      # Swarm ignores the short `tmpfs:` key
                vols.append({"type": "tmpfs", "target": v.target})
            elif v.type == "tmpfs":
                s.setdefault("tmpfs", []).append(v.target)
            elif v.source:
                vols.append(f"{v.source}:{v.target}{mode}")
                if v.type == "bind":
                    notes.append(f"{name}: bind mount {v.source} refers to files " +
                                 ("that must exist on every node the task may run on" if swarm else
                                  "next to the Compose file"))
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
        nets = svc.networks or ["default"]
        if svc.aliases:
            s["networks"] = {n: {"aliases": list(svc.aliases)} for n in nets}
        elif svc.networks:
            s["networks"] = list(nets)
        services[name] = s
    if ignored_order:
        notes.append(f"Swarm starts services in no order and ignores depends_on ({', '.join(ignored_order)}): "
                     "a service that needs another restarts on failure until it answers (restart \"no\" becomes "
                     "on-failure there)")
    # no `name:`, which docker-compose 1.x and Swarm refuse: the caller says it in a comment
    doc: dict[str, Any] = {"version": "3.9", "services": services} if swarm else {"services": services}
    used_nets = sorted({n for svc in project.services.values() for n in (svc.networks or ["default"])})
    if swarm or project.networks:
        doc["networks"] = {n: ({"driver": "overlay"} if swarm else {}) for n in used_nets}
    if project.volumes:
        doc["volumes"] = {v: {} for v in sorted(project.volumes)}
    used = sorted({r.source for svc in project.services.values() for r in svc.secrets})
    if used:                 # where each value comes from, never the value
        doc["secrets"] = {n: ({"file": project.secrets[n].file} if project.secrets[n].file else
                              {"external": True, "name": n} if swarm else
                              {"environment": project.secrets[n].environment}) for n in used}
        if any(not (project.secrets[n].file or "/").startswith("/") for n in used):
            notes.append("secrets: a relative file is read next to the Compose file")
        for sec in used:
            if project.secrets[sec].environment and swarm:
                notes.append(f"secret {sec}: Swarm takes no `environment:` secret; it is `external`: create it "
                             f"first with `printf %s \"${project.secrets[sec].environment}\" | docker secret create "
                             f"{sec} -`")
            elif project.secrets[sec].environment:
                notes.append(f"secret {sec}: `environment:` is the Compose spec's (docker compose v2, podman-compose); "
                             f"for docker-compose 1.x or Swarm make it `external: true` after `printf %s "
                             f"\"${project.secrets[sec].environment}\" | docker secret create {sec} -`")
    return doc, notes
