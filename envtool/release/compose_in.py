"""`envtool import compose.yaml`: a Compose file → an envtool.toml document, plus a report of what
did not convert or was approximated.  Pure except for reading the Dockerfiles and requirement files
the Compose file points at.

Images come from Debian packages here, so well-known Docker Hub images (redis, nginx, python, …)
and Dockerfiles built FROM them become recipes on debian:bookworm; any other image stays a
registry reference.  A Dockerfile is translated instruction by instruction (FROM, WORKDIR, ENV,
COPY/ADD, RUN — `pip install` becomes the recipe's pip list and `apt-get install` its packages —
USER, CMD, ENTRYPOINT); what has no counterpart is reported, never silently dropped.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envtool.errors import SpecError

# Docker Hub name (last path part) → a Debian recipe that does the same job
KNOWN_IMAGES: dict[str, dict[str, Any]] = {
    "redis": {"packages": ["redis-server", "redis-tools"],
              "cmd": ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no"]},
    "redismod": {"packages": ["redis-server", "redis-tools"],
                 "cmd": ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no"]},
    "memcached": {"packages": ["memcached"], "cmd": ["memcached", "-u", "nobody", "-l", "0.0.0.0"]},
    "nginx": {"packages": ["nginx-light"], "cmd": ["nginx", "-g", "daemon off;"]},
    "python": {"packages": ["python3", "python3-pip", "python3-venv"], "cmd": ["python3"]},
    "node": {"packages": ["nodejs", "npm"], "cmd": ["node"]},
    "debian": {"packages": [], "cmd": ["bash"]},
    "ubuntu": {"packages": [], "cmd": ["bash"]},
    "alpine": {"packages": [], "cmd": ["sh"]},
    "busybox": {"packages": ["busybox"], "cmd": ["sh"]},
}
# Alpine package → Debian package ("" = not needed on Debian)
APK_TO_DEB = {"gcc": "gcc", "musl-dev": "libc6-dev", "linux-headers": "linux-libc-dev", "g++": "g++",
              "make": "make", "curl": "curl", "git": "git", "bash": "bash", "libffi-dev": "libffi-dev",
              "openssl-dev": "libssl-dev", "postgresql-dev": "libpq-dev", "build-base": "build-essential"}
UNSUPPORTED_KEYS = ("networks", "network_mode", "privileged", "devices", "extra_hosts", "dns", "labels",
                    "logging", "secrets", "configs", "profiles", "container_name", "links", "ulimits",
                    "security_opt", "sysctls", "pid", "ipc", "platform", "pull_policy", "expose", "tty",
                    "stdin_open", "shm_size", "tmpfs", "external_links", "domainname", "mac_address")


@dataclass
class Imported:
    document: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _name(text: str) -> str:
    out = re.sub(r"[^a-z0-9_-]", "-", text.lower()).strip("-_")
    return out if out and out[0].isalnum() else f"x{out}"


def _known(image: str) -> tuple[str, dict[str, Any]] | None:
    repo = image.split("@")[0]
    last = repo.rsplit("/", 1)[-1]
    base = last.split(":")[0]
    if base in KNOWN_IMAGES:
        return base, KNOWN_IMAGES[base]
    return None


def _argv(value: Any) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else [str(x) for x in value]


class Converter:
    def __init__(self, compose: dict[str, Any], directory: Path, project: str | None) -> None:
        self.compose, self.directory = compose, directory
        self.out = Imported()
        self.doc = self.out.document
        self.project = project or _name(str(compose.get("name") or directory.resolve().name))
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
            self.doc["services"][_name(name)] = self.service(name, svc or {})
        vols = self.compose.get("volumes") or {}
        if vols:
            self.doc["volumes"] = {_name(v): {} for v in vols}
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
        known = _known(image)
        if known is None:
            self.note(f"{name}: image {image!r} is kept as a registry reference (pulled as is)")
            return image
        base, recipe = known
        key = _name(base)
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
        key = _name(name)
        target = spec.get("target")
        self.images[key] = DockerfileConverter(self, name, context, dockerfile, target).run()
        return key

    # ---- services -------------------------------------------------------------------------------
    def service(self, name: str, svc: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"image": self.image_for(name, svc)}
        for key in ("command", "entrypoint"):
            if svc.get(key) is not None:
                out[key] = _argv(svc[key])
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
            out["depends_on"] = ({_name(d): "started" for d in deps} if isinstance(deps, list) else
                                 {_name(d): cond.get((v or {}).get("condition", "service_started"), "started")
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


class DockerfileConverter:
    """One Dockerfile → one recipe: the stage Compose builds (build.target, else the last one)."""

    def __init__(self, parent: Converter, service: str, context: Path, dockerfile: Path,
                 target: str | None = None) -> None:
        self.parent, self.service, self.context, self.dockerfile = parent, service, context, dockerfile
        self.target = target
        self.recipe: dict[str, Any] = {"from": "debian:bookworm"}
        self.workdir = "/"
        self.env: dict[str, str] = {}
        self.dirs: set[str] = {"/"}

    def note(self, text: str) -> None:
        self.parent.note(f"{self.service}: {self.dockerfile.name}: {text}")

    def _finish(self) -> dict[str, Any]:
        recipe = json.loads(json.dumps(self.recipe))
        if self.env:
            recipe["env"] = dict(self.env)
        if self.workdir != "/":
            recipe["workdir"] = self.workdir
        return recipe

    def run(self) -> dict[str, Any]:
        stages: dict[str, tuple[dict[str, Any], str, dict[str, str]]] = {}
        current: str | None = None
        for instr, args in _instructions(self.dockerfile.read_text()):
            if instr == "FROM":
                words = [w for w in args.split() if not w.startswith("--")]
                image = words[0] if words else "scratch"
                if current is not None and current == self.target:
                    break
                name = words[2].lower() if len(words) > 2 and words[1].lower() == "as" else None
                if image.lower() in stages:                  # FROM an earlier stage: carry on from it
                    r, w, e = stages[image.lower()]
                    self.recipe, self.workdir, self.env = json.loads(json.dumps(r)), w, dict(e)
                else:
                    self.recipe, self.workdir, self.env = {"from": "debian:bookworm"}, "/", {}
                    self.from_(image)
                current = name
                if name:
                    stages[name] = (self.recipe, self.workdir, self.env)
            else:
                getattr(self, f"i_{instr.lower()}", self.unknown(instr))(args)
                if current:
                    stages[current] = (self.recipe, self.workdir, self.env)
        if self.target and self.target.lower() not in stages:
            raise SpecError(f"service {self.service!r}: build target {self.target!r} is not a stage of "
                            f"{self.dockerfile}")
        return self._finish()

    def unknown(self, instr: str) -> Any:
        return lambda args: self.note(f"{instr} {args[:60]} is not converted")

    def from_(self, args: str) -> None:
        image = args.split()[0]
        known = _known(image)
        if known is None:
            self.recipe["from"] = image
            self.note(f"FROM {image}: used as a registry base as is")
            return
        base, recipe = known
        self.recipe["packages"] = list(recipe["packages"])
        self.note(f"FROM {image} → debian:bookworm with {', '.join(recipe['packages']) or 'no extra packages'}")

    def _path(self, p: str) -> str:
        return posixpath.normpath(posixpath.join(self.workdir, p)) + ("/" if p.endswith("/") else "")

    def i_workdir(self, args: str) -> None:
        self.workdir = self._path(args.strip())          # the runtime creates it, as Docker does
        self.dirs.add(self.workdir)

    def i_env(self, args: str) -> None:
        parts = shlex.split(args)
        if parts and "=" not in parts[0]:
            self.env[parts[0]] = " ".join(parts[1:])
        else:
            self.env.update(dict(p.split("=", 1) for p in parts if "=" in p))

    def i_arg(self, args: str) -> None:
        self.note(f"ARG {args} is not converted (use ${{VAR}} in envtool.toml)")

    def i_copy(self, args: str) -> None:
        words = _argv_or_words(args)
        source = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
        if source is not None:
            self.note(f"COPY --from={source} is not converted (files from another image or stage)")
            return
        parts = [p for p in words if not p.startswith("--")]
        if len(parts) < 2:
            return
        *sources, dst = parts
        for src in sources:
            full = (self.context / src).resolve()
            project = self.parent.directory.resolve()
            if not full.is_relative_to(project):
                self.note(f"COPY {src} is outside the project directory; not converted")
                continue
            rel = posixpath.normpath(str(full.relative_to(project)))
            target = self._path(dst)
            if full.is_dir():
                target = target.rstrip("/") or "/"
                rel = (rel + "/") if rel != "." else "./"
                self.dirs.add(target)
            elif dst.endswith("/") or dst == "." or len(sources) > 1 or target.rstrip("/") in self.dirs:
                target = target.rstrip("/") + "/" + full.name   # into a directory, as Docker does
            self.recipe.setdefault("copy", []).append({"src": rel, "dst": target})

    i_add = i_copy

    def i_run(self, args: str) -> None:
        while args.startswith("--"):                  # --mount=..., --network=...: BuildKit options
            args = args.split(None, 1)[1] if " " in args else ""
        command = " ".join(json.loads(args)) if args.lstrip().startswith("[") else args
        for part in [c.strip() for c in re.split(r"&&|;|\n", command) if c.strip()]:
            self.run_part(part)

    def run_part(self, part: str) -> None:
        words = shlex.split(part)
        if not words:
            return
        if words[0] in ("pip", "pip3") or words[:3] in (["python", "-m", "pip"], ["python3", "-m", "pip"]):
            args = words[words.index("install") + 1:] if "install" in words else []
            reqs: list[str] = []
            it = iter(args)
            for a in it:
                if a in ("-r", "--requirement"):
                    reqs += self.requirements(next(it, ""))
                elif a.startswith("-"):
                    continue
                else:
                    reqs.append(a)
            self.recipe.setdefault("pip", []).extend(reqs)
            if "python3-pip" not in self.recipe.get("packages", []):
                self.recipe.setdefault("packages", []).append("python3-pip")
            return
        verb = "add" if words[0] == "apk" else "install"
        if words[0] in ("apk", "apt-get", "apt") and verb in words:
            names = [w for w in words[words.index(verb) + 1:] if not w.startswith("-")]
            debs = [APK_TO_DEB.get(n, n) if words[0] == "apk" else n.split("=")[0] for n in names]
            pkgs = self.recipe.setdefault("packages", [])
            pkgs.extend(d for d in debs if d and d not in pkgs)
            if words[0] == "apk":
                self.note(f"apk add {' '.join(names)} → Debian packages {', '.join(d for d in debs if d)}")
            return
        if words[0] in ("apt-get", "apt", "apk") or words[:2] == ["rm", "-rf"] and "/var/lib/apt/lists" in part:
            return                                 # update/clean: mmdebstrap does this
        if words[0] in ("adduser", "addgroup") and "-S" in words:
            self.note(f"{part!r} (Alpine's busybox user tools) is not converted; add a run step with "
                      "useradd/groupadd")
            return
        cwd = f"cd {shlex.quote(self.workdir)} && " if self.workdir != "/" else ""
        self.recipe.setdefault("run", []).append(cwd + part)

    def requirements(self, rel: str) -> list[str]:
        path = self.context / rel
        if not path.is_file():
            self.note(f"pip requirements file {rel} does not exist")
            return []
        out = []
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                out.append(line)
        return out

    def i_cmd(self, args: str) -> None:
        self.recipe["cmd"] = _exec_form(args)

    def i_entrypoint(self, args: str) -> None:
        self.recipe["entrypoint"] = _exec_form(args)

    def i_user(self, args: str) -> None:
        self.recipe["user"] = args.strip()

    def i_expose(self, args: str) -> None:
        pass                                       # every port of a container is reachable on its network

    def i_label(self, args: str) -> None:
        pass

    def i_healthcheck(self, args: str) -> None:
        self.note("HEALTHCHECK is not converted; add healthcheck = { command = [...] } to the service")


def _argv_or_words(args: str) -> list[str]:
    return list(json.loads(args)) if args.lstrip().startswith("[") else shlex.split(args)


def _exec_form(args: str) -> list[str]:
    args = args.strip()
    if args.startswith("["):
        return [str(x) for x in json.loads(args)]
    return ["sh", "-c", args]


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined, heredocs (<<EOF … EOF) taken in
    whole, and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    lines = iter(text.splitlines())
    for raw in lines:
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        heredoc = re.search(r"<<-?[\"']?([A-Za-z_][A-Za-z0-9_]*)[\"']?\s*$", rest)
        if heredoc:
            body = []
            for more in lines:
                if more.strip() == heredoc[1]:
                    break
                body.append(more)
            rest = rest[:heredoc.start()] + "\n".join(body)
        out.append((word.upper(), rest.strip()))
    return out


def convert(compose: dict[str, Any], directory: Path, project: str | None = None) -> Imported:
    return Converter(compose, directory, project).run()
