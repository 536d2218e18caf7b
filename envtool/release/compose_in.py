"""`envtool import compose.yaml`: a Compose file → an envtool.toml document, plus a report of what
did not convert or was approximated.  Pure except for reading the Dockerfiles and requirement files
the Compose file points at.

Images come from Debian packages here, so well-known Docker Hub images (redis, nginx, python, …;
release/known_images.py) and Dockerfiles built FROM them (release/dockerfile_in.py) become recipes
on debian:bookworm; any other image stays a registry reference.  What has no counterpart is
reported, never silently dropped.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envtool.errors import SpecError
from envtool.release.dockerfile_in import DockerfileConverter
from envtool.release.known_images import argv_of, known_image, safe_name

UNSUPPORTED_KEYS = ("networks", "network_mode", "privileged", "devices", "extra_hosts", "dns", "labels",
                    "logging", "secrets", "configs", "profiles", "container_name", "links", "ulimits",
                    "security_opt", "sysctls", "pid", "ipc", "platform", "pull_policy", "expose", "tty",
                    "stdin_open", "shm_size", "tmpfs", "external_links", "domainname", "mac_address")


@dataclass
class Imported:
    document: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Converter:
    def __init__(self, compose: dict[str, Any], directory: Path, project: str | None) -> None:
        self.compose, self.directory = compose, directory
        self.out = Imported()
        self.doc = self.out.document
        self.project = project or safe_name(str(compose.get("name") or directory.resolve().name))
        self.images: dict[str, Any] = {}

    def note(self, text: str) -> None:
        if text not in self.out.notes:
            self.out.notes.append(text)

    def run(self) -> Imported:
        services = self.compose.get("services")
        if not isinstance(services, dict) or not services:
            raise SpecError("the Compose file has no services", hint="is this a Compose file?")
        self.doc["project"] = {"name": self.project}
        self.doc["images"] = self.images
        self.doc["services"] = {}
        for name, svc in services.items():
            self.doc["services"][safe_name(name)] = self.service(name, svc or {})
        vols = self.compose.get("volumes") or {}
        if vols:
            self.doc["volumes"] = {safe_name(v): {} for v in vols}
        for key in self.compose:
            if key not in ("services", "volumes", "name", "version"):
                self.note(f"top-level {key!r} is not converted (envtool gives each project one private network)")
        if not self.images:
            del self.doc["images"]
        return self.out

    # ---- images ---------------------------------------------------------------------------------
    def image_for(self, name: str, svc: dict[str, Any]) -> str:
        if "build" in svc:
            return self.from_build(name, svc["build"])
        image = str(svc.get("image") or "")
        if not image:
            raise SpecError(f"service {name!r} has neither image nor build")
        known = known_image(image)
        if known is None:
            self.note(f"{name}: image {image!r} is kept as a registry reference (pulled as is)")
            return image
        base, recipe = known
        key = safe_name(base)
        if key not in self.images:
            self.images[key] = {"from": "debian:bookworm", "packages": list(recipe["packages"]),
                                "cmd": list(recipe["cmd"])}
            self.note(f"{name}: image {image!r} → recipe {key!r} from Debian packages "
                      f"({', '.join(recipe['packages']) or 'base only'}); Debian's version, not the image's tag")
        return key

    def from_build(self, name: str, build: Any) -> str:
        spec = {"context": build} if isinstance(build, str) else dict(build)
        context = (self.directory / str(spec.get("context", "."))).resolve()
        dockerfile = context / str(spec.get("dockerfile", "Dockerfile"))
        for key in spec:
            if key not in ("context", "dockerfile", "target"):
                self.note(f"{name}: build.{key} is not converted")
        if not dockerfile.is_file():
            raise SpecError(f"service {name!r}: {dockerfile} does not exist", hint="build needs a Dockerfile")
        key = safe_name(name)
        target = spec.get("target")
        self.images[key] = DockerfileConverter(self, name, context, dockerfile, target).run()
        return key

    # ---- services -------------------------------------------------------------------------------
    def service(self, name: str, svc: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"image": self.image_for(name, svc)}
        for key in ("command", "entrypoint"):
            if svc.get(key) is not None:
                out[key] = argv_of(svc[key])
        env = svc.get("environment")
        if env:
            out["environment"] = env if isinstance(env, dict) else dict(
                e.split("=", 1) if "=" in e else (e, f"${{{e}}}") for e in env)
            out["environment"] = {k: "" if v is None else str(v) for k, v in out["environment"].items()}
        if svc.get("env_file"):
            out["env_file"] = [svc["env_file"]] if isinstance(svc["env_file"], str) else [
                f if isinstance(f, str) else f["path"] for f in svc["env_file"]]
        if svc.get("ports"):
            out["ports"] = [self.port(p) for p in svc["ports"]]
        deps = svc.get("depends_on")
        if deps:
            cond = {"service_started": "started", "service_healthy": "healthy",
                    "service_completed_successfully": "completed"}
            out["depends_on"] = ({safe_name(d): "started" for d in deps} if isinstance(deps, list) else
                                 {safe_name(d): cond.get((v or {}).get("condition", "service_started"), "started")
                                  for d, v in deps.items()})
        restart = svc.get("restart")
        if restart:
            out["restart"] = "on-failure" if str(restart).startswith("on-failure") else str(restart)
        if svc.get("healthcheck"):
            hc = self.healthcheck(svc["healthcheck"])
            if hc:
                out["healthcheck"] = hc
        deploy = svc.get("deploy") or {}
        if deploy.get("replicas") is not None:
            out["replicas"] = int(deploy["replicas"])
        limits = dict(((deploy.get("resources") or {}).get("limits")) or {})
        for key, target in (("mem_limit", "memory"), ("cpus", "cpus"), ("pids_limit", "pids")):
            if svc.get(key) is not None:
                limits[target] = svc[key]
        res: dict[str, Any] = {}
        if limits.get("memory"):
            res["memory"] = str(limits["memory"]).upper().rstrip("B") or "0"
        if limits.get("cpus"):
            res["cpus"] = float(limits["cpus"])
        if limits.get("pids"):
            res["pids"] = int(limits["pids"])
        if res:
            out["resources"] = res
        update = self.update_config(name, deploy.get("update_config") or {})
        if update:
            out["update"] = update
        for key in ("stop_signal", "stop_grace_period", "user", "hostname"):
            if svc.get(key) is not None:
                out[key] = str(svc[key])
        if svc.get("working_dir"):
            out["workdir"] = svc["working_dir"]
        for key in ("read_only", "init"):
            if svc.get(key) is not None:
                out[key] = bool(svc[key])
        for key in ("cap_add", "cap_drop"):
            if svc.get(key):
                out[key] = [str(c) for c in svc[key]]
        vols = [v for v in (self.volume(name, v) for v in svc.get("volumes") or []) if v]
        if vols:
            out["volumes"] = vols
        for key in svc:
            if key in UNSUPPORTED_KEYS or key not in _SERVICE_KEYS:
                self.note(f"{name}: {key!r} is not converted")
        return out

    def port(self, p: Any) -> str:
        if isinstance(p, dict):
            text = str(p["target"])
            if p.get("published"):
                text = f"{p['published']}:{text}"
                if p.get("host_ip"):
                    text = f"{p['host_ip']}:{text}"
            return text + (f"/{p['protocol']}" if p.get("protocol") else "")
        return str(p)

    def update_config(self, service: str, uc: dict[str, Any]) -> dict[str, Any]:
        """deploy.update_config → [update]; Compose's defaults differ from ours (stop-first, pause,
        5 s), so only what the file says is carried."""
        out: dict[str, Any] = {}
        if uc.get("order") in ("start-first", "stop-first"):
            out["order"] = uc["order"]
        if isinstance(uc.get("parallelism"), int) and uc["parallelism"] >= 1:
            out["parallelism"] = uc["parallelism"]
        elif uc.get("parallelism") == 0:
            self.note(f"{service}: update_config.parallelism 0 (all at once) is not supported; 1 at a time")
        if uc.get("monitor") is not None:
            out["monitor"] = str(uc["monitor"])
        if uc.get("failure_action") in ("rollback", "pause"):
            out["failure_action"] = uc["failure_action"]
        elif uc.get("failure_action") == "continue":
            self.note(f"{service}: update_config.failure_action continue is not supported; pause is used")
            out["failure_action"] = "pause"
        for key in sorted(set(uc) - {"order", "parallelism", "monitor", "failure_action"}):
            self.note(f"{service}: deploy.update_config.{key} is not converted")
        return out

    def healthcheck(self, hc: dict[str, Any]) -> dict[str, Any] | None:
        if hc.get("disable"):
            return None
        test = hc.get("test")
        if isinstance(test, str):
            command = ["sh", "-c", test]
        elif test and test[0] == "CMD":
            command = [str(x) for x in test[1:]]
        elif test and test[0] == "CMD-SHELL":
            command = ["sh", "-c", " ".join(str(x) for x in test[1:])]
        else:
            return None
        out: dict[str, Any] = {"command": command}
        for key in ("interval", "timeout", "start_period"):
            if hc.get(key):
                out[key] = str(hc[key])
        if hc.get("retries"):
            out["retries"] = int(hc["retries"])
        return out

    def volume(self, service: str, v: Any) -> str | None:
        if isinstance(v, dict):
            kind, source, target = v.get("type", "volume"), v.get("source"), v["target"]
            ro = bool(v.get("read_only"))
        else:
            parts = str(v).split(":")
            source, target = (parts[0], parts[1]) if len(parts) > 1 else (None, parts[0])
            ro = len(parts) > 2 and "ro" in parts[2].split(",")
            kind = "bind" if source and source.startswith((".", "/", "~")) else "volume"
        if kind == "bind":
            full = (self.directory / str(source)).resolve()
            if not full.is_relative_to(self.directory.resolve()):
                self.note(f"{service}: bind mount {source} is outside the project directory; not converted")
                return None
            rel = posixpath.normpath(str(full.relative_to(self.directory.resolve())))
            source = "./" + rel if rel != "." else "."
        elif kind == "tmpfs":
            return f"{target}"
        return f"{source}:{target}{':ro' if ro else ''}" if source else str(target)


_SERVICE_KEYS = {"image", "build", "command", "entrypoint", "environment", "env_file", "ports", "depends_on",
                 "restart", "healthcheck", "deploy", "mem_limit", "cpus", "pids_limit", "stop_signal",
                 "stop_grace_period", "user", "hostname", "working_dir", "read_only", "init", "cap_add", "cap_drop",
                 "volumes"}


def convert(compose: dict[str, Any], directory: Path, project: str | None = None) -> Imported:
    return Converter(compose, directory, project).run()
