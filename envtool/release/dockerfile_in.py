"""A Dockerfile → one envtool image recipe (the stage Compose builds), instruction by instruction:
FROM, WORKDIR, ENV, COPY/ADD, RUN (`pip install` becomes the recipe's pip list, `apt-get install`
and `apk add` its packages), USER, CMD, ENTRYPOINT.  What has no counterpart is reported through
the Compose converter's notes, never silently dropped.  Pure except for reading the Dockerfile and
the requirement files it names.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envtool.errors import SpecError
from envtool.release.known_images import known_image

if TYPE_CHECKING:
    from envtool.release.compose_in import Converter

# Alpine package → Debian package ("" = not needed on Debian)
APK_TO_DEB = {"gcc": "gcc", "musl-dev": "libc6-dev", "linux-headers": "linux-libc-dev", "g++": "g++",
              "make": "make", "curl": "curl", "git": "git", "bash": "bash", "libffi-dev": "libffi-dev",
              "openssl-dev": "libssl-dev", "postgresql-dev": "libpq-dev", "build-base": "build-essential"}

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
        known = known_image(image)
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


