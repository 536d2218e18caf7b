"""`envtool import compose.yaml`: a Compose file → an envtool.toml document, the support files its
recipes copy (entrypoints that keep official images' contracts), and a report of what did not
convert or was approximated.  Pure except for reading the files the Compose file points at.

Images come from Debian packages here: Docker Hub's official images (postgres, mariadb/mysql,
redis, nginx, httpd, php, wordpress, python, node, golang, …; release/official) become recipes that
keep each image's contract, and Dockerfiles become recipes stage by stage (release/dockerfile_in.py).
An image envtool cannot translate is an error naming the service and its line, unless
`keep_registry` keeps it as a registry reference (pulled at `up`).  What has no counterpart is
reported, never silently dropped.
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path
from typing import Any

from envtool._util.record import dataclass, field
from envtool.errors import Location, SpecError
from envtool.release import official
from envtool.release.dockerfile_in import DockerfileConverter
from envtool.spec.imageref import ImageRef, InvalidImageRef

# service keys with no counterpart, and why (reported when present)
UNSUPPORTED_KEYS = {
    "network_mode": "every service joins the project's network", "privileged": "containers never get all "
    "capabilities; use cap_add for the ones needed", "devices": "devices are not passed into containers",
    "extra_hosts": "not converted", "dns": "containers use envtool's DNS server", "dns_search": "not converted",
    "labels": "not converted", "logging": "envtool keeps each container's log itself (envtool logs)",
    "configs": "not converted: bind-mount the file instead", "ulimits": "not converted",
    "security_opt": "envtool's seccomp profile and capability set apply", "sysctls": "not converted",
    "pid": "each container has its own PID namespace", "ipc": "each container has its own IPC namespace",
    "platform": "images are built for this host's architecture", "pull_policy": "not converted",
    "tty": "not converted (envtool exec -t gives a terminal)", "stdin_open": "not converted",
    "shm_size": "not converted", "tmpfs": "not converted", "external_links": "not converted",
    "domainname": "not converted", "mac_address": "not converted", "userns_mode": "not converted",
    "cgroup_parent": "envtool places containers in its own cgroup tree", "isolation": "not converted",
    "oom_score_adj": "not converted", "group_add": "not converted", "scale": "not converted; use deploy.replicas",
    "runtime": "envtool's own runtime runs every container", "mem_reservation": "not converted",
    "cpuset": "not converted", "cpu_shares": "not converted", "volumes_from": "not converted",
}
TOP_LEVEL = {
    "configs": "top-level configs are not converted: bind-mount the files instead",
    "secrets": "",           # converted
    "networks": "",          # reported by what they declare
    "services": "", "volumes": "", "name": "", "version": "",
}


@dataclass
class Imported:
    document: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)     # project-relative path → content


class Converter:
    def __init__(self, compose: dict[str, Any], directory: Path, project: str | None,
                 output_dir: Path | None = None, keep_registry: bool = False,
                 source: str | None = None) -> None:
        self.compose, self.directory = compose, directory
        self.output_dir = (output_dir or directory).resolve()
        self.keep_registry = keep_registry
        self.source = source or str(directory / "compose.yaml")
        self.out = Imported()
        self.doc = self.out.document
        self.project = project or safe_name(str(compose.get("name") or directory.resolve().name))
        self.images: dict[str, Any] = {}
        self.image_keys: dict[Any, str] = {}
        self.aliases: dict[str, list[str]] = {}
        self._service_networks: dict[str, list[str]] = {}
        from envtool.spec.interpolate import Interpolation, read_dotenv

        dotenv = directory / ".env"
        self.variables = {**(read_dotenv(dotenv.read_text()) if dotenv.is_file() else {}), **os.environ}
        self._interp = Interpolation(self.variables)
        self.lines = _service_lines(Path(self.source))

    # ---- shared with the Dockerfile converter ---------------------------------------------------
    def note(self, text: str) -> None:
        if text not in self.out.notes:
            self.out.notes.append(text)

    def interpolate(self, text: str) -> str:
        """Compose's ${VAR} filled from .env and the environment, for what import must resolve now
        (paths, build args); the service values are left to envtool's own interpolation."""
        try:
            return self._interp.string(str(text), ())
        except ValueError as e:
            raise SpecError(f"{self.source}: {e}") from None

    def image_name(self, preferred: str, key: Any) -> str:
        """A recipe name no other recipe has (a service `nginx` built from a Dockerfile and the
        nginx image another service uses are two recipes)."""
        if key in self.image_keys:
            return self.image_keys[key]
        base = safe_name(preferred)
        name, n = base, 2
        while name in self.images or name in self.image_keys.values():
            name, n = f"{base}-{n}", n + 1
        self.image_keys[key] = name
        self.images.setdefault(name, {})
        return name

    def add_image(self, name: str, recipe: dict[str, Any]) -> None:
        self.images[name] = recipe

    def add_support_files(self, o: official.Official) -> None:
        for rel, text in o.support_files().items():
            self.out.files[self._output_rel(self.directory / rel)] = text

    def _output_rel(self, full: Path) -> str:
        return posixpath.normpath(os.path.relpath(full.resolve() if full.exists() else full, self.output_dir))

    def project_path(self, full: Path, what: str) -> str | None:
        """A path in the Compose project as the written envtool.toml names it (relative to the
        directory it is written to), or None (reported) when it lies outside that directory."""
        rel = os.path.relpath(full.resolve(), self.output_dir)
        if rel == ".." or rel.startswith("../"):
            self.note(f"{what}: {full} is outside the directory envtool.toml is written to; not converted")
            return None
        rel = posixpath.normpath(rel)
        return "./" if rel == "." else rel + ("/" if full.is_dir() else "")

    def registry_image(self, image: str, what: str, file: Path | str | None = None, line: int = 0) -> str:
        """An image with no Debian translation: a registry reference when the user asked for that
        (normalized as Docker reads it), else an error naming where it came from."""
        try:
            ref = ImageRef.parse(image)
        except InvalidImageRef as e:
            raise SpecError(str(e), location=Location(str(file), line) if file else None) from None
        normalized = ref.normalized().text if ref.kind in ("registry", "recipe") else image
        if ref.kind == "recipe":
            normalized = ImageRef.parse(f"{image}:latest").normalized().text
        missing = official.not_in_debian(image)
        elsewhere = ref.registry is not None and ref.registry not in ("docker.io", "index.docker.io")
        if self.keep_registry or (elsewhere and not missing):       # a registry of the user's own
            self.note(f"{what}: kept as the registry reference {normalized} (pulled at up)")
            return normalized
        why = missing or "it has no Debian translation"
        raise SpecError(f"{what}: image {image!r} cannot be built here: {why}",
                        location=Location(str(file), line) if file else None,
                        hint=f"use the registry reference (envtool import --keep-registry-images keeps "
                             f"{normalized}, pulled at up), or replace it with an [images.*] recipe")

    # ---- the file -------------------------------------------------------------------------------
    def run(self) -> Imported:
        services = self.compose.get("services")
        if not isinstance(services, dict) or not services:
            raise SpecError("the Compose file has no services", hint="is this a Compose file?")
        self.doc["project"] = {"name": self.project}
        self.doc["images"] = self.images
        self.doc["services"] = {}
        skipped = {n for n, s in services.items() if (s or {}).get("profiles")}
        for name in sorted(skipped):
            self.note(f"{name}: in profiles {services[name]['profiles']}: Compose starts it only when a profile "
                      "is chosen; not converted")
        for name, svc in services.items():
            if name not in skipped:
                self.doc["services"][safe_name(name)] = self.service(name, self.extends(name, svc or {}))
        for name, extra in self.aliases.items():
            svc = self.doc["services"].get(name)
            if svc is not None:
                svc["aliases"] = sorted(set(svc.get("aliases", [])) | set(extra) - {name})
        for name, nets in self._service_networks.items():
            if name in self.doc["services"]:
                self.doc["services"][name]["networks"] = nets
        self.volumes(self.compose.get("volumes") or {})
        self.secrets(self.compose.get("secrets") or {})
        self.networks(self.compose.get("networks") or {})
        for key in self.compose:
            if key.startswith("x-"):
                continue
            why = TOP_LEVEL.get(key)
            if why is None:
                self.note(f"top-level {key!r} is not a Compose key envtool knows; not converted")
            elif why:
                self.note(why)
        if not self.images:
            del self.doc["images"]
        return self.out

    def extends(self, name: str, svc: dict[str, Any], depth: int = 0) -> dict[str, Any]:
        ext = svc.get("extends")
        if not ext:
            return svc
        if depth > 10:
            raise SpecError(f"service {name!r}: extends goes more than 10 levels deep (a cycle?)")
        base_name = ext if isinstance(ext, str) else ext.get("service")
        services = self.compose.get("services") or {}
        if isinstance(ext, dict) and ext.get("file"):
            import yaml

            path = self.directory / self.interpolate(ext["file"])
            try:
                services = (yaml.safe_load(path.read_text()) or {}).get("services") or {}
            except (OSError, yaml.YAMLError) as e:
                raise SpecError(f"service {name!r}: extends file {path}: {e}") from None
        if base_name not in services:
            raise SpecError(f"service {name!r} extends unknown service {base_name!r}")
        base = self.extends(base_name, dict(services[base_name] or {}), depth + 1)
        merged = {**base, **{k: v for k, v in svc.items() if k != "extends"}}
        for key in ("environment", "labels"):
            if isinstance(base.get(key), dict) and isinstance(svc.get(key), dict):
                merged[key] = {**base[key], **svc[key]}
        for key in ("ports", "volumes", "expose"):
            if isinstance(base.get(key), list) and isinstance(svc.get(key), list):
                merged[key] = base[key] + [v for v in svc[key] if v not in base[key]]
        return merged

    # ---- images ---------------------------------------------------------------------------------
    def image_for(self, name: str, svc: dict[str, Any], out: dict[str, Any]) -> str:
        if "build" in svc:
            return self.from_build(name, svc["build"], out)
        image = self.interpolate(str(svc.get("image") or ""))
        if not image:
            raise SpecError(f"service {name!r} has neither image nor build",
                            location=Location(self.source, self.lines.get(name, 0)))
        match = official.lookup(image)
        if match is None:
            return self.registry_image(image, f"service {name!r}", self.source, self.lines.get(name, 0))
        o = match.official
        key = self.image_name(o.name, ("official", o.name))
        if not self.images.get(key):
            self.images[key] = o.recipe()
            self.add_support_files(o)
            self.note(f"{name}: image {image!r} → recipe {key!r}: {o.software} {o.version} from Debian "
                      f"{official.SUITE} ({', '.join(o.packages) or 'base only'}), with the image's "
                      "entrypoint contract" if o.files else
                      f"{name}: image {image!r} → recipe {key!r}: {o.software} {o.version} from Debian "
                      f"{official.SUITE} ({', '.join(o.packages) or 'base only'})")
        for n in match.notes:
            self.note(f"{name}: {n}")
        if o.stop_signal and "stop_signal" not in svc:
            out["stop_signal"] = o.stop_signal
        return key

    def from_build(self, name: str, build: Any, out: dict[str, Any]) -> str:
        spec = {"context": build} if isinstance(build, str) else dict(build)
        context = (self.directory / self.interpolate(str(spec.get("context", ".")))).resolve()
        dockerfile = context / self.interpolate(str(spec.get("dockerfile", "Dockerfile")))
        raw_args: Any = spec.get("args") or {}
        if isinstance(raw_args, list):
            raw_args = dict(a.split("=", 1) if "=" in a else (a, self.variables.get(a, "")) for a in raw_args)
        args = {str(k): self.interpolate(str(v)) for k, v in dict(raw_args).items() if v is not None}
        for key in spec:
            if key not in ("context", "dockerfile", "target", "args"):
                self.note(f"{name}: build.{key} is not converted")
        if spec.get("dockerfile_inline"):
            raise SpecError(f"service {name!r}: build.dockerfile_inline is not supported",
                            hint="write the Dockerfile to a file and name it in build.dockerfile")
        if not dockerfile.is_file():
            raise SpecError(f"service {name!r}: {dockerfile} does not exist", hint="build needs a Dockerfile",
                            location=Location(self.source, self.lines.get(name, 0)))
        built = DockerfileConverter(self, name, context, dockerfile, spec.get("target"), args).run()
        if built.healthcheck and "healthcheck" not in out:
            out["healthcheck"] = built.healthcheck
        if built.stop_signal:
            out["stop_signal"] = built.stop_signal
        return built.image

    # ---- services -------------------------------------------------------------------------------
    def service(self, name: str, svc: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"image": ""}            # first in the table
        out["image"] = self.image_for(name, svc, out)
        for key in ("command", "entrypoint"):
            if svc.get(key) is not None:
                out[key] = argv_of(svc[key])
        env = svc.get("environment")
        if env:
            env = env if isinstance(env, dict) else dict(
                e.split("=", 1) if "=" in e else (e, f"${{{e}}}") for e in env)
            out["environment"] = {k: "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
                                  for k, v in env.items()}
        if svc.get("env_file"):
            files = [svc["env_file"]] if isinstance(svc["env_file"], str) else [
                f if isinstance(f, str) else f["path"] for f in svc["env_file"]]
            out["env_file"] = [p for f in files if (p := self.project_path(
                self.directory / self.interpolate(f), f"{name}: env_file {f}")) is not None]
        ports = [p for raw in svc.get("ports") or [] for p in self.ports(name, raw)]
        if ports:
            out["ports"] = ports
        if svc.get("expose"):
            self.note(f"{name}: expose is not needed: every port of a container is reachable from the project's "
                      "other services")
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
        if "healthcheck" in svc:
            hc = self.healthcheck(svc["healthcheck"] or {})
            if hc:
                out["healthcheck"] = hc
            else:
                out.pop("healthcheck", None)
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
        if svc.get("secrets"):
            out["secrets"] = [self.service_secret(name, s) for s in svc["secrets"]]
        self.names(name, svc)
        for key in svc:
            if key in UNSUPPORTED_KEYS:
                self.note(f"{name}: {key!r}: {UNSUPPORTED_KEYS[key]}")
            elif key not in _SERVICE_KEYS:
                self.note(f"{name}: {key!r} is not converted")
        return out

    def names(self, name: str, svc: dict[str, Any]) -> None:
        """container_name, links and network aliases → more DNS names of the service."""
        me = safe_name(name)
        if svc.get("container_name"):
            self.aliases.setdefault(me, []).append(str(svc["container_name"]))
            self.note(f"{name}: container_name {svc['container_name']!r} → a DNS alias of the service "
                      f"(envtool names its containers {self.project}-{me}-N)")
        for link in svc.get("links") or []:
            target, _, alias = str(link).partition(":")
            if alias:
                self.aliases.setdefault(safe_name(target), []).append(alias)
        nets = svc.get("networks")
        if nets:
            out_nets = sorted(safe_name(n) for n in (nets if isinstance(nets, list) else nets))
            self._service_networks[me] = out_nets
        if isinstance(nets, dict):
            for cfg in nets.values():
                for alias in (cfg or {}).get("aliases") or []:
                    self.aliases.setdefault(me, []).append(str(alias))

    def ports(self, service: str, p: Any) -> list[str]:
        if isinstance(p, dict):
            text = str(p["target"])
            if p.get("published"):
                text = f"{p['published']}:{text}"
                if p.get("host_ip"):
                    text = f"{p['host_ip']}:{text}"
            return [text + (f"/{p['protocol']}" if p.get("protocol") else "")]
        text = self.interpolate(str(p))
        m = re.fullmatch(r"(?:(?P<ip>[\d.]+|\[[0-9a-fA-F:]+\]):)?(?:(?P<h1>\d+)(?:-(?P<h2>\d+))?:)?"
                         r"(?P<c1>\d+)(?:-(?P<c2>\d+))?(?P<proto>/(?:tcp|udp))?", text)
        if not m or not (m["h2"] or m["c2"]):
            return [text]
        c1, c2 = int(m["c1"]), int(m["c2"] or m["c1"])
        h1 = int(m["h1"]) if m["h1"] else None
        h2 = int(m["h2"] or m["h1"]) if m["h1"] else None
        if h1 is not None and h2 is not None and h2 - h1 != c2 - c1:
            raise SpecError(f"service {service!r}: port range {text!r}: the host and container ranges differ in "
                            "size", location=Location(self.source, self.lines.get(service, 0)))
        prefix = f"{m['ip']}:" if m["ip"] else ""
        return [(f"{prefix}{h1 + i}:" if h1 is not None else "") + f"{c1 + i}{m['proto'] or ''}"
                for i in range(c2 - c1 + 1)]

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

    def volume(self, service: str, v: Any) -> str | dict[str, Any] | None:
        if isinstance(v, dict):
            kind, source, target = v.get("type", "volume"), v.get("source"), v["target"]
            ro = bool(v.get("read_only"))
        else:
            parts = self.interpolate(str(v)).split(":")
            source, target = (parts[0], parts[1]) if len(parts) > 1 else (None, parts[0])
            ro = len(parts) > 2 and "ro" in parts[2].split(",")
            kind = "bind" if source and source.startswith((".", "/", "~")) else "volume"
        if kind == "bind":
            source = os.path.expanduser(self.interpolate(str(source)))
            rel = self.project_path(self.directory / source, f"{service}: bind mount {source}")
            if rel is None:
                return None
            source = rel.rstrip("/") or "."
            if not source.startswith((".", "/")):
                source = "./" + source
        elif kind == "tmpfs":
            return {"type": "tmpfs", "target": str(target)}
        elif kind != "volume":
            self.note(f"{service}: a {kind} mount is not converted")
            return None
        return f"{source}:{target}{':ro' if ro else ''}" if source else str(target)

    def volumes(self, vols: dict[str, Any]) -> None:
        if not vols:
            return
        self.doc["volumes"] = {}
        for name, cfg in vols.items():
            self.doc["volumes"][safe_name(name)] = {}
            cfg = cfg or {}
            if cfg.get("external"):
                self.note(f"volume {name!r} is external in Compose (made outside it); envtool creates it as a "
                          "volume of this project, empty")
            for key in sorted(set(cfg) - {"external", "name", "labels"}):
                self.note(f"volume {name!r}: {key} is not converted (volumes are directories on this host)")

    def networks(self, nets: dict[str, Any]) -> None:
        """Compose networks → [networks]: services reach (and resolve) only services sharing one."""
        if not nets:
            return
        self.doc["networks"] = {}
        for name, cfg in nets.items():
            if safe_name(name) != "default":
                self.doc["networks"][safe_name(name)] = {}
            for key in sorted(set(cfg or {}) - {"name", "labels"}):
                why = {"external": "made outside Compose; envtool makes it for this project",
                       "internal": "not converted: its services can still reach the outside",
                       "driver": "envtool's networks are its own bridge"}.get(key, "not converted")
                self.note(f"network {name!r}: {key}: {why}")
        if not self.doc["networks"]:
            del self.doc["networks"]

    def secrets(self, secrets: dict[str, Any]) -> None:
        out: dict[str, Any] = {}
        for name, cfg in secrets.items():
            cfg = cfg or {}
            if cfg.get("file"):
                path = self.interpolate(str(cfg["file"]))
                rel = self.project_path(self.directory / os.path.expanduser(path), f"secret {name!r}")
                out[safe_name(name)] = {"file": rel.rstrip("/") if rel else os.path.abspath(
                    self.directory / os.path.expanduser(path))}
            elif cfg.get("environment"):
                out[safe_name(name)] = {"environment": str(cfg["environment"])}
            else:
                raise SpecError(f"secret {name!r}: only file and environment secrets can be converted",
                                hint="external secrets live in an orchestrator; give the secret a file here")
        if out:
            self.doc["secrets"] = out

    def service_secret(self, service: str, s: Any) -> Any:
        if isinstance(s, str):         # Compose binds the file, readable by all as its source usually is
            return {"source": safe_name(s), "mode": 0o444}
        out: dict[str, Any] = {"source": safe_name(s["source"])}
        for key in ("target", "uid", "gid"):
            if s.get(key) is not None:
                out[key] = int(s[key]) if key != "target" else str(s[key])
        mode = s.get("mode")
        out["mode"] = 0o444 if mode is None else int(mode, 8) if isinstance(mode, str) else int(mode)
        return out


_SERVICE_KEYS = {"image", "build", "command", "entrypoint", "environment", "env_file", "ports", "depends_on",
                 "restart", "healthcheck", "deploy", "mem_limit", "cpus", "pids_limit", "stop_signal",
                 "stop_grace_period", "user", "hostname", "working_dir", "read_only", "init", "cap_add", "cap_drop",
                 "volumes", "secrets", "container_name", "links", "networks", "expose", "extends", "profiles"}


def _service_lines(path: Path) -> dict[str, int]:
    """Service name → the line of its image (else of its name) in the Compose file (for errors)."""
    import yaml

    try:
        root = yaml.compose(path.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    if not isinstance(root, yaml.MappingNode):
        return {}
    for key, value in root.value:
        if key.value == "services" and isinstance(value, yaml.MappingNode):
            return {k.value: next((ik.start_mark.line + 1 for ik, _ in (v.value if isinstance(v, yaml.MappingNode)
                                                                      else []) if ik.value == "image"),
                                  k.start_mark.line + 1) for k, v in value.value}
    return {}


def safe_name(text: str) -> str:
    out = re.sub(r"[^a-z0-9_-]", "-", text.lower()).strip("-_")
    return out if out and out[0].isalnum() else f"x{out}"


def argv_of(value: Any) -> list[str]:
    import shlex

    return shlex.split(value) if isinstance(value, str) else [str(x) for x in value]


def convert(compose: dict[str, Any], directory: Path, project: str | None = None, output_dir: Path | None = None,
            keep_registry: bool = False, source: str | None = None) -> Imported:
    return Converter(compose, directory, project, output_dir, keep_registry, source).run()
