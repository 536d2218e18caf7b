"""A Dockerfile → envtool image recipes: the stage Compose builds, plus every stage it copies from
(multi-stage builds become `copy = [{ from = "<stage recipe>" }]`).

Parsed with `dockerfile` (a binding of BuildKit's own parser: heredocs, flags, JSON and shell
forms, line continuations).  Instructions map onto ordered recipe steps in the Dockerfile's order:
a RUN is one shell step, run where Docker runs it (its WORKDIR, its ARGs exported); a RUN that only
installs Debian/Alpine packages becomes the recipe's `packages` (pinned by the lock), and a RUN
that only pip-installs becomes a `pip` step (pinned with wheel hashes).  ARG, ENV and the other
instructions Docker expands variables in are expanded here, with Docker's rules, from build.args,
ARG defaults and ENV; every `$` left in the result is escaped for envtool.toml, so nothing is
filled in from the importing host's environment.  What has no counterpart is reported through the
Compose converter's notes, never silently dropped.
"""

from __future__ import annotations

import copy as copylib
import glob
import json
import os
import posixpath
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envtool._util.record import dataclass, field
from envtool.errors import SpecError
from envtool.release import official

if TYPE_CHECKING:
    from envtool.release.compose_in import Converter

# Alpine package → Debian package ("" = not needed on Debian)
APK_TO_DEB = {"gcc": "gcc", "musl-dev": "libc6-dev", "linux-headers": "linux-libc-dev", "g++": "g++",
              "make": "make", "curl": "curl", "git": "git", "bash": "bash", "libffi-dev": "libffi-dev",
              "openssl-dev": "libssl-dev", "postgresql-dev": "libpq-dev", "build-base": "build-essential",
              "ca-certificates": "ca-certificates", "tzdata": "tzdata", "libpq": "libpq5", "py3-pip": "python3-pip",
              "python3": "python3", "nodejs": "nodejs", "npm": "npm", "openssl": "openssl", "wget": "wget",
              "jpeg-dev": "libjpeg-dev", "zlib-dev": "zlib1g-dev", "mariadb-dev": "libmariadb-dev",
              "mariadb-connector-c-dev": "libmariadb-dev", "libxml2-dev": "libxml2-dev", "tini": "tini",
              "su-exec": "", "shadow": "passwd", "git-lfs": "git-lfs", "pkgconfig": "pkg-config"}
# docker-php-ext-install NAME → the Debian package that carries the extension ("" = built in)
PHP_EXT_TO_DEB = {"mysqli": "php-mysql", "pdo_mysql": "php-mysql", "pdo": "", "pgsql": "php-pgsql",
                  "pdo_pgsql": "php-pgsql", "gd": "php-gd", "zip": "php-zip", "intl": "php-intl",
                  "mbstring": "php-mbstring", "bcmath": "php-bcmath", "opcache": "", "xml": "php-xml",
                  "curl": "php-curl", "soap": "php-soap", "exif": "", "sockets": "", "calendar": "",
                  "redis": "php-redis", "sqlite3": "php-sqlite3", "pdo_sqlite": "php-sqlite3"}
DEFAULT_PATH = official.PATH


@dataclass
class Stage:
    index: int
    alias: str | None
    recipe: dict[str, Any]
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)       # expanded values, as Docker keeps them
    base_env: dict[str, str] = field(default_factory=dict)  # what the base image sets already
    dirs: set[str] = field(default_factory=lambda: {"/"})   # directories known to exist (COPY into them)
    args: dict[str, str] = field(default_factory=dict)
    debian: bool = True                                     # packages may be added
    uses: set[int] = field(default_factory=set)             # stages this one copies from or builds on
    healthcheck: dict[str, Any] | None = None
    stop_signal: str | None = None
    expose: list[str] = field(default_factory=list)
    name: str = ""                                          # its recipe's name, once needed


@dataclass
class Built:
    """What Compose's service gets from its Dockerfile besides the image."""
    image: str
    healthcheck: dict[str, Any] | None = None
    stop_signal: str | None = None
    expose: list[str] = field(default_factory=list)


class DockerfileConverter:
    def __init__(self, parent: Converter, service: str, context: Path, dockerfile: Path,
                 target: str | None = None, build_args: dict[str, str] | None = None) -> None:
        self.parent, self.service, self.context, self.dockerfile = parent, service, context, dockerfile
        self.target = target
        self.build_args = dict(build_args or {})
        self.stages: list[Stage] = []
        self.global_args: dict[str, str] = {}
        self.line = 0

    def note(self, text: str) -> None:
        self.parent.note(f"{self.service}: {self.dockerfile.name}:{self.line}: {text}")

    def error(self, text: str, hint: str | None = None) -> SpecError:
        from envtool.errors import Location

        return SpecError(f"service {self.service!r}: {text}", location=Location(str(self.dockerfile), self.line),
                         hint=hint)

    # ---- the whole file -------------------------------------------------------------------------
    def run(self) -> Built:
        import dockerfile

        try:
            commands = dockerfile.parse_string(self.dockerfile.read_text())
        except (dockerfile.GoParseError, OSError, UnicodeDecodeError) as e:
            raise SpecError(f"service {self.service!r}: cannot parse {self.dockerfile}: {e}") from None
        stage: Stage | None = None
        for c in commands:
            self.line = c.start_line
            if c.cmd == "FROM":
                if stage is not None and self.target and (stage.alias or "") == self.target.lower():
                    break
                stage = self.from_(c)
                continue
            if stage is None:
                if c.cmd == "ARG":
                    self.i_arg(None, c)
                continue
            handler = getattr(self, f"i_{c.cmd.lower()}", None)
            if handler is None:
                self.note(f"{c.cmd} is not converted")
            else:
                handler(stage, c)
        if stage is None:
            raise SpecError(f"service {self.service!r}: {self.dockerfile} has no FROM")
        if self.target and (stage.alias or "") != self.target.lower():
            raise SpecError(f"service {self.service!r}: build target {self.target!r} is not a stage of "
                            f"{self.dockerfile}")
        self._name_stages(stage)
        return Built(stage.name, stage.healthcheck, stage.stop_signal, stage.expose)

    def _name_stages(self, final: Stage) -> None:
        """The built stage is the service's recipe; the stages it needs get recipes of their own."""
        needed, todo = {final.index}, [final]
        while todo:
            s = todo.pop()
            for i in s.uses:
                if i not in needed:
                    needed.add(i)
                    todo.append(self.stages[i])
        for s in self.stages:
            if s.index in needed:
                preferred = self.service if s is final else f"{self.service}-{s.alias or f'stage{s.index}'}"
                s.name = self.parent.image_name(preferred, key=("build", str(self.dockerfile), self.target,
                                                               s.index, tuple(sorted(self.build_args.items()))))
        for s in sorted((self.stages[i] for i in needed), key=lambda s: s.index):
            recipe = _resolve_refs(s.recipe, self.stages)
            env = {k: v for k, v in s.env.items() if s.base_env.get(k) != v}
            if env:
                recipe["env"] = {**recipe.get("env", {}), **env}
            if s.workdir != "/":
                recipe["workdir"] = s.workdir
            self.parent.add_image(s.name, _escape(recipe))

    # ---- instructions ---------------------------------------------------------------------------
    def from_(self, c: Any) -> Stage:
        words = [w for w in c.value]
        image = self.expand(words[0], self.global_args) if words else "scratch"
        alias = words[2].lower() if len(words) > 2 and words[1].lower() == "as" else None
        for flag in c.flags:
            if flag.startswith("--platform"):
                self.note(f"FROM {flag} is not converted (images are built for this host's architecture)")
        stage = Stage(len(self.stages), alias, {})
        earlier = next((s for s in reversed(self.stages) if s.alias == image.lower()), None)
        if earlier is None and image.isdigit() and int(image) < len(self.stages):
            earlier = self.stages[int(image)]
        if earlier is not None:                           # FROM an earlier stage: carry on from it
            if earlier.debian:      # its recipe continued, so packages can still join the Debian base
                stage.recipe, stage.uses = copylib.deepcopy(earlier.recipe), set(earlier.uses)
                stage.base_env = dict(earlier.base_env)
            else:
                stage.recipe, stage.debian = {"from": f"image:@{earlier.index}"}, False
                stage.base_env = dict(earlier.env)
                stage.uses.add(earlier.index)
            stage.workdir, stage.env, stage.dirs = earlier.workdir, dict(earlier.env), set(earlier.dirs)
            stage.args = dict(earlier.args)
            stage.healthcheck, stage.stop_signal = earlier.healthcheck, earlier.stop_signal
        elif image == "scratch":
            stage.recipe, stage.debian = {"from": "scratch"}, False
        else:
            match = official.lookup(image)
            if match is not None:
                o = match.official
                stage.recipe = copylib.deepcopy(o.recipe())
                self.parent.add_support_files(o)
                stage.env = {"PATH": DEFAULT_PATH, **dict(o.env)}
                stage.base_env = {"PATH": DEFAULT_PATH}          # what debian:bookworm itself sets
                stage.workdir = o.workdir or "/"
                stage.dirs.add(stage.workdir)
                stage.recipe.pop("env", None)
                stage.recipe.pop("workdir", None)
                stage.stop_signal = o.stop_signal
                for n in match.notes:
                    self.note(n)
                self.note(f"FROM {image} → debian:{official.SUITE} with {o.software} from Debian "
                          f"({', '.join(o.packages) or 'no extra packages'})")
            else:
                ref = self.parent.registry_image(image, f"FROM {image}", self.dockerfile, self.line)
                stage.recipe, stage.debian = {"from": ref}, False
        self.stages.append(stage)
        return stage

    def expand(self, text: str, variables: dict[str, str]) -> str:
        return expand(text, variables)

    def _vars(self, stage: Stage) -> dict[str, str]:
        return {**stage.args, **stage.env}

    def i_arg(self, stage: Stage | None, c: Any) -> None:
        for word in c.value:
            name, eq, default = word.partition("=")
            target = self.global_args if stage is None else stage.args
            if name in self.build_args:
                value = self.build_args[name]
            elif eq:
                value = expand(default, {**self.global_args, **(self._vars(stage) if stage else {})})
            elif stage is not None and name in self.global_args:
                value = self.global_args[name]
            else:
                continue                    # declared without a value: unset, as in Docker
            target[name] = value

    def i_env(self, stage: Stage, c: Any) -> None:
        values = list(c.value)
        pairs = list(zip(values[::2], values[1::2], strict=False))
        for key, raw in pairs:
            stage.env[key] = expand(raw, self._vars(stage))

    def i_workdir(self, stage: Stage, c: Any) -> None:
        path = expand(" ".join(c.value), self._vars(stage))
        stage.workdir = posixpath.normpath(posixpath.join(stage.workdir, path))
        stage.dirs.add(stage.workdir)

    def i_user(self, stage: Stage, c: Any) -> None:
        stage.recipe["user"] = expand(" ".join(c.value), self._vars(stage))

    def i_cmd(self, stage: Stage, c: Any) -> None:
        stage.recipe["cmd"] = list(c.value) if c.json else ["/bin/sh", "-c", " ".join(c.value)]

    def i_entrypoint(self, stage: Stage, c: Any) -> None:
        stage.recipe["entrypoint"] = list(c.value) if c.json else ["/bin/sh", "-c", " ".join(c.value)]
        stage.recipe.pop("cmd", None)                 # Docker resets CMD when ENTRYPOINT is set

    def i_expose(self, stage: Stage, c: Any) -> None:
        stage.expose += [expand(v, self._vars(stage)) for v in c.value]

    def i_stopsignal(self, stage: Stage, c: Any) -> None:
        stage.stop_signal = expand(c.value[0], self._vars(stage)) if c.value else None

    def i_label(self, stage: Stage, c: Any) -> None:
        pass

    def i_maintainer(self, stage: Stage, c: Any) -> None:
        pass

    def i_volume(self, stage: Stage, c: Any) -> None:
        paths = list(c.value)
        self.note(f"VOLUME {' '.join(paths)}: declare a volume on the service to keep that data "
                  "(envtool does not create anonymous volumes for an image)")

    def i_shell(self, stage: Stage, c: Any) -> None:
        self.note(f"SHELL {json.dumps(list(c.value))} is not converted: run steps use /bin/sh -c")

    def i_onbuild(self, stage: Stage, c: Any) -> None:
        self.note("ONBUILD is not converted")

    def i_healthcheck(self, stage: Stage, c: Any) -> None:
        values = list(c.value)
        if not values or values[0].upper() == "NONE":
            stage.healthcheck = None
            return
        command = values[1:] if c.json else ["sh", "-c", " ".join(values[1:])]
        hc: dict[str, Any] = {"command": command}
        for flag in c.flags:
            key, _, value = flag.lstrip("-").partition("=")
            key = key.replace("-", "_")
            if key in ("interval", "timeout", "start_period"):
                hc[key] = value
            elif key == "retries":
                hc["retries"] = int(value)
        stage.healthcheck = hc

    # ---- RUN --------------------------------------------------------------------------------------
    def i_run(self, stage: Stage, c: Any) -> None:
        for flag in c.flags:
            if not flag.startswith("--mount=type=cache"):
                self.note(f"RUN {flag} is not converted")
        if c.json:
            command = shlex.join(c.value)
        elif c.heredocs:
            head = " ".join(c.value).strip()
            doc = c.heredocs[0]
            if re.fullmatch(r"<<-?[\"']?\w+[\"']?", head):      # RUN <<EOT: the heredoc is the script
                command = doc.content
            else:                                               # RUN <<EOT bash: sh takes heredocs as is
                command = c.original.split(None, 1)[1] if " " in c.original else ""
                command = re.sub(r"^(--\S+\s+)*", "", command)
        else:
            command = " ".join(c.value)
        if stage.debian and self._packages(stage, command):
            return
        if stage.debian:
            command = self._busybox_users(stage, command)
        if self._pip(stage, command):
            return
        used = {n: v for n, v in stage.args.items() if re.search(rf"\${{?{re.escape(n)}\b", command)}
        if used:
            command = "export " + " ".join(f"{n}={shlex.quote(v)}" for n, v in sorted(used.items())) + "; " + command
        step: dict[str, Any] = {"run": command}
        if stage.workdir != "/":
            step["workdir"] = stage.workdir
        stage.recipe.setdefault("steps", []).append(step)

    def _packages(self, stage: Stage, command: str) -> bool:
        """A RUN made only of package-manager commands → the recipe's packages (pinned by the lock);
        anything else in it and the RUN stays a shell step."""
        segments = _segments(command)
        if segments is None or not segments:
            return False
        names: list[str] = []
        for words in segments:
            tool = words[0]
            if tool in ("apt-get", "apt"):
                if "install" in words:
                    names += [w.split("=")[0] for w in words[words.index("install") + 1:] if not w.startswith("-")]
                elif not set(words[1:]) & {"update", "upgrade", "clean", "autoremove", "autoclean",
                                           "dist-upgrade", "-y", "-qq", "-q"}:
                    return False
            elif tool == "apk":
                if "add" in words:
                    apk = [w for w in words[words.index("add") + 1:] if not w.startswith("-")]
                    debs = [APK_TO_DEB.get(n.split("=")[0], n.split("=")[0]) for n in apk]
                    self.note(f"apk add {' '.join(apk)} → Debian packages {', '.join(d for d in debs if d)}")
                    names += [d for d in debs if d]
                elif "update" not in words and "upgrade" not in words:
                    return False
            elif tool == "docker-php-ext-install":
                exts = [w for w in words[1:] if not w.startswith("-")]
                debs = [PHP_EXT_TO_DEB.get(e, f"php-{e}") for e in exts]
                self.note(f"docker-php-ext-install {' '.join(exts)} → Debian packages "
                          f"{', '.join(d for d in debs if d) or '(built in)'}")
                names += [d for d in debs if d]
            elif tool in ("docker-php-ext-enable", "docker-php-ext-configure"):
                continue                          # Debian's packages enable what they install
            elif tool == "rm" and all(w.startswith("-") or w.startswith(("/var/lib/apt/lists", "/var/cache/apk",
                                                                        "/tmp/"))
                                      for w in words[1:]):
                continue
            else:
                return False
        pkgs = stage.recipe.setdefault("packages", [])
        pkgs.extend(n for n in names if n not in pkgs and re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", n))
        if not pkgs:
            del stage.recipe["packages"]
        return True

    def _busybox_users(self, stage: Stage, command: str) -> str:
        """Alpine's busybox `addgroup -S g` / `adduser -S -D -G g -s sh u` → Debian's adduser with
        the same meaning (the package is added); anything else is left as written."""
        segments = _segments(command)
        if not segments or not any(w[0] in ("adduser", "addgroup") for w in segments):
            return command
        flags = {"-S": "--system", "-D": "--disabled-password", "-H": "--no-create-home", "-G": "--ingroup",
                 "-s": "--shell", "-h": "--home", "-u": "--uid", "-g": "--gecos"}
        out = []
        for words in segments:
            if words[0] in ("adduser", "addgroup") and not any(w.startswith("--") for w in words[1:] if w not in
                                                                   ("--shell", "--ingroup", "--system", "--home")):
                new, it = [words[0]], iter(words[1:])
                for w in it:
                    if w in ("-S", "-D", "-H"):
                        new.append(flags[w])
                    elif w in ("-G", "-s", "-h", "-u", "-g"):
                        new += [flags[w] if not (words[0] == "addgroup" and w == "-g") else "--gid", next(it, "")]
                    else:
                        new.append(w)
                if words[0] == "adduser" and "--disabled-password" not in new:
                    new.insert(1, "--disabled-password")
                if "--gecos" not in new and words[0] == "adduser":
                    new[1:1] = ["--gecos", ""]
                out.append(shlex.join(new))
            else:
                out.append(shlex.join(words))
        pkgs = stage.recipe.setdefault("packages", [])
        if "adduser" not in pkgs:
            pkgs.append("adduser")
        self.note("Alpine's adduser/addgroup → Debian's adduser (package adduser added)")
        return " && ".join(out)

    def _pip(self, stage: Stage, command: str) -> bool:
        """A RUN that only pip-installs named requirements (or requirement files) → a pip step, at
        its place; local paths, editable installs and a second pip step stay shell steps."""
        segments = _segments(command)
        if not segments or len(segments) != 1 or _has_pip_step(stage.recipe):
            return False
        words = segments[0]
        if words[0] in ("pip", "pip3"):
            rest = words[1:]
        elif words[:3] in (["python", "-m", "pip"], ["python3", "-m", "pip"]):
            rest = words[3:]
        else:
            return False
        if not rest or rest[0] != "install":
            return False
        reqs: list[str] = []
        it = iter(rest[1:])
        for a in it:
            if a in ("-r", "--requirement"):
                file = next(it, "")
                found = self.requirements(stage, file)
                if found is None:
                    return False
                reqs += found
            elif a.startswith("--requirement=") or a.startswith("-r") and len(a) > 2:
                found = self.requirements(stage, a.split("=", 1)[-1] if "=" in a else a[2:])
                if found is None:
                    return False
                reqs += found
            elif a in ("-e", "--editable", "-t", "--target", "--prefix", "--root", "-c", "--constraint",
                       "-i", "--index-url", "--extra-index-url", "-f", "--find-links"):
                return False
            elif a.startswith("-"):
                continue
            elif a.startswith((".", "/")) or "://" in a or a.endswith((".whl", ".tar.gz", ".zip")):
                return False
            else:
                reqs.append(a)
        if not reqs:
            return False
        stage.recipe.setdefault("steps", []).append({"pip": reqs})
        if stage.debian and "python3-pip" not in stage.recipe.get("packages", []):
            stage.recipe.setdefault("packages", []).append("python3-pip")
        return True

    def requirements(self, stage: Stage, rel: str) -> list[str] | None:
        """The requirements of a file COPYed into the image, read from the build context; None when
        it cannot be read here (the RUN stays a shell step)."""
        path = self.context / rel
        if not path.is_file():
            path = self.context / posixpath.basename(rel)
        if not path.is_file():
            return None
        out = []
        for line in path.read_text().splitlines():
            line = line.split(" #", 1)[0].strip()
            if line.startswith("#") or not line:
                continue
            if line.startswith("-"):
                return None               # nested files, index options: pip reads them itself
            out.append(line)
        return out

    # ---- COPY / ADD ---------------------------------------------------------------------------------
    def i_copy(self, stage: Stage, c: Any, add: bool = False) -> None:
        variables = self._vars(stage)
        flags = {f.lstrip("-").partition("=")[0]: f.partition("=")[2] for f in c.flags}
        words = [expand(w, variables) for w in c.value]
        if len(words) < 2:
            return
        *sources, dst = words
        target = posixpath.normpath(posixpath.join(stage.workdir, dst))
        if dst.endswith("/") or dst in (".", "./") or target in stage.dirs:
            target = target.rstrip("/") + "/"        # into that directory, as Docker copies
        base: dict[str, Any] = {}
        if flags.get("chown"):
            base["chown"] = expand(flags["chown"], variables)
        if flags.get("chmod"):
            try:
                base["mode"] = int(flags["chmod"], 8)
            except ValueError:
                self.note(f"COPY --chmod={flags['chmod']} is not converted")
        for key in sorted(set(flags) - {"chown", "chmod", "from", "link"}):
            self.note(f"{c.cmd} --{key} is not converted")
        if "from" in flags:
            self._copy_from(stage, flags["from"], sources, target, base)
            return
        copies = stage.recipe.setdefault("steps", [])
        many = len(sources) > 1 or any(glob.has_magic(s) for s in sources)
        for src in sources:
            if add and re.match(r"^[a-z]+://", src):
                self.note(f"ADD {src}: downloads are not converted; fetch it in a run step (curl) instead")
                continue
            matches = sorted(glob.glob(str(self.context / src))) if glob.has_magic(src) else [str(self.context / src)]
            if not matches:
                self.note(f"{c.cmd} {src}: nothing in the build context matches")
            for full in matches:
                rel = self.parent.project_path(Path(full), f"{c.cmd} {src}")
                if rel is None:
                    continue
                if add and re.search(r"\.(tar|tgz|tar\.(gz|bz2|xz))$", full):
                    self.note(f"ADD {src}: copied as the archive file, not unpacked as Docker's ADD does")
                into = target
                if os.path.isdir(full):
                    into = target.rstrip("/") or "/"
                    stage.dirs.add(into)
                elif many and not target.endswith("/"):
                    into = target + "/"
                if into.endswith("/"):
                    stage.dirs.add(into.rstrip("/") or "/")
                copies.append({"copy": {"src": rel, "dst": into, **base}})

    def i_add(self, stage: Stage, c: Any) -> None:
        self.i_copy(stage, c, add=True)

    def _copy_from(self, stage: Stage, source: str, sources: list[str], target: str, base: dict[str, Any]) -> None:
        earlier = next((s for s in reversed(self.stages) if s.alias == source.lower()), None)
        if earlier is None and source.isdigit() and int(source) < len(self.stages):
            earlier = self.stages[int(source)]
        if earlier is None:
            self.note(f"COPY --from={source} is not converted (files from another image; name a stage of this "
                      "Dockerfile, or copy from an [images.*] recipe)")
            return
        stage.uses.add(earlier.index)
        for src in sources:
            path = src if src.startswith("/") else "/" + src
            into = target if len(sources) == 1 or target.endswith("/") else target + "/"
            stage.recipe.setdefault("steps", []).append(
                {"copy": {"from": f"@{earlier.index}", "src": path, "dst": into, **base}})


# ---- helpers --------------------------------------------------------------------------------------
def _has_pip_step(recipe: dict[str, Any]) -> bool:
    return bool(recipe.get("pip")) or any("pip" in s for s in recipe.get("steps", []))


def _segments(command: str) -> list[list[str]] | None:
    """The simple commands of `a && b; c` as word lists; None when the command has anything more
    (pipes, redirections, subshells, control flow, variables): then it runs as written."""
    command = "\n".join(line for line in command.replace("\\\n", " ").splitlines()
                        if line.strip() and not line.strip().startswith("#")).replace("\n", " ; ")
    if re.search(r"[|<>`$(){}]", command):
        return None
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=";&")
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError:
        return None
    out: list[list[str]] = [[]]
    for t in tokens:
        if t in ("&&", ";"):
            out.append([])
        elif set(t) <= set(";&"):
            return None
        else:
            out[-1].append(t)
    words = [w for w in out if w]
    if any(w[0] in ("if", "for", "while", "case", "then", "do", "export", "cd") or "=" in w[0] for w in words):
        return None
    return words


def expand(text: str, variables: dict[str, str]) -> str:
    """Docker's word expansion for ENV, ARG, WORKDIR, COPY, USER…: quotes removed, $VAR, ${VAR},
    ${VAR:-default} and ${VAR:+alternative} filled in (unset: empty); nothing in single quotes."""
    out: list[str] = []
    i, quote = 0, ""
    while i < len(text):
        ch = text[i]
        if quote == "'":
            if ch == "'":
                quote = ""
            else:
                out.append(ch)
            i += 1
        elif ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        elif ch == '"':
            quote = "" if quote == '"' else '"'
            i += 1
        elif ch == "'" and not quote:
            quote = "'"
            i += 1
        elif ch == "$" and (m := re.match(r"\$(?:\{(\w+)(?:(:[-+])([^}]*))?\}|(\w+))", text[i:])):
            value = variables.get(m[1] or m[4]) or ""
            if m[2] == ":-" and not value:
                value = expand(m[3], variables)
            elif m[2] == ":+":
                value = expand(m[3], variables) if value else ""
            out.append(value)
            i += m.end()
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _escape(value: Any) -> Any:
    """Every `$` as `$$`: a recipe from a Dockerfile is filled in already, and what is left (a
    shell's `$HOME`) must reach the shell, not be taken from the importing host's environment."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {k: _escape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape(v) for v in value]
    return value


def _resolve_refs(recipe: dict[str, Any], stages: list[Stage]) -> dict[str, Any]:
    """`image:@N` and copy `from = "@N"` (stage N) → the recipes' names."""
    out = copylib.deepcopy(recipe)
    if str(out.get("from", "")).startswith("image:@"):
        out["from"] = "image:" + stages[int(out["from"][7:])].name
    for step in out.get("steps", []):
        c = step.get("copy")
        if isinstance(c, dict) and str(c.get("from", "")).startswith("@"):
            c["from"] = stages[int(c["from"][1:])].name
    return out
