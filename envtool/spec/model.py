"""pydantic models of envtool.toml (extra keys forbidden).  Field names are the TOML keys."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from envtool._util.units import format_duration, parse_duration, parse_size
from envtool.spec import shorthand

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
SERVICE_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"


def _format_size(n: int) -> str:
    for unit, scale in (("G", 1024**3), ("M", 1024**2), ("k", 1024)):
        if n % scale == 0 and n >= scale:
            return f"{n // scale}{unit}"
    return str(n)


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema({"type": ["string", "number"], "pattern": r"^(\d+(\.\d+)?(ns|us|ms|s|m|h)?)+$",
                    "description": "duration: 500ms, 10s, 1m30s; a number is seconds"}),
]
Size = Annotated[
    int,
    BeforeValidator(parse_size),
    PlainSerializer(_format_size, return_type=str, when_used="json"),
    WithJsonSchema({"type": ["string", "integer"], "pattern": r"^\d+(\.\d+)?\s*[kKmMgGtT]?(i?[bB])?$",
                    "description": "size in bytes: 64M, 1G, 512k"}),
]
Command = Annotated[
    list[str],
    BeforeValidator(shorthand.parse_command),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=False)


class Protocol(StrEnum):
    tcp = "tcp"
    udp = "udp"


class Condition(StrEnum):
    started = "started"
    healthy = "healthy"
    completed = "completed"


class RestartPolicy(StrEnum):
    no = "no"
    on_failure = "on-failure"
    always = "always"
    unless_stopped = "unless-stopped"


class UpdateOrder(StrEnum):
    start_first = "start-first"
    stop_first = "stop-first"


class FailureAction(StrEnum):
    rollback = "rollback"
    pause = "pause"


class WatchAction(StrEnum):
    sync = "sync"
    restart = "restart"
    sync_restart = "sync+restart"
    rebuild = "rebuild"
    sync_exec = "sync+exec"


# ---- project -------------------------------------------------------------------------------
class ProjectSection(Strict):
    name: str | None = Field(None, pattern=NAME_PATTERN, description="default: the directory's name")
    subnet: str | None = Field(None, description="pin the project's private subnet, e.g. 10.89.3.0/24")


# ---- images --------------------------------------------------------------------------------
class CopySpec(Strict):
    src: str = Field(description="path in the project directory (with `from`: an absolute path in that image)")
    dst: str = Field(description="absolute path in the image; ending in / puts a file into that directory")
    from_: str | None = Field(None, alias="from", description="another image recipe of the project to copy "
                              "from (a multi-stage build: a toolchain image builds, a slim image runs)")
    chown: str | None = Field(None, description="user[:group] that owns the copied files")
    mode: int | None = Field(None, description="file mode for copied regular files, e.g. 0o644")

    @field_validator("dst")
    @classmethod
    def _absolute(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("dst must be an absolute path in the image")
        if ".." in v.split("/"):
            raise ValueError("dst must not contain '..': name the path in the image directly")
        return v


class RecipeStep(Strict):
    """One ordered build step: exactly one of run, copy or pip (Dockerfile RUN, COPY, pip install)."""
    run: str | None = Field(None, description="a shell command, run with /bin/sh -c as Docker's RUN")
    copy_: Annotated[list[CopySpec] | None, BeforeValidator(lambda v: [v] if isinstance(v, dict) else v)] = Field(
        None, alias="copy", description="one copy table or a list of them")
    pip: list[str] | None = Field(None, description="PyPI requirements (one pip step per image)")
    workdir: str | None = Field(None, description="run: the directory the command runs in (created if missing)")

    @model_validator(mode="after")
    def _exactly_one(self) -> RecipeStep:
        given = [k for k, v in (("run", self.run), ("copy", self.copy_), ("pip", self.pip)) if v is not None]
        if len(given) != 1:
            raise ValueError("a step has exactly one of run, copy or pip"
                             + (f" (this one has {' and '.join(given)})" if given else ""))
        if self.workdir is not None and self.run is None:
            raise ValueError("workdir belongs to a run step")
        if self.workdir is not None and not self.workdir.startswith("/"):
            raise ValueError("workdir must be an absolute path in the image")
        return self


def check_mirror(v: str) -> str:
    """One http(s) or file URL and nothing else: the value is written into an apt sources file,
    where a newline would add fields (`Trusted: yes`) or whole repositories."""
    from urllib.parse import urlsplit

    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in v):
        raise ValueError("mirror must be a single URL, without spaces or line breaks")
    try:
        url = urlsplit(v)
    except ValueError as e:
        raise ValueError(f"mirror is not a URL: {e}") from None
    if url.scheme not in ("http", "https", "file"):
        raise ValueError(f"mirror must be an http://, https:// or file:// URL, not {v!r}")
    if url.scheme != "file" and not url.hostname:
        raise ValueError(f"mirror {v!r} names no host")
    if url.scheme == "file" and not url.path.startswith("/"):
        raise ValueError(f"mirror {v!r} must be an absolute file:// URL")
    return v


class ImageRecipe(Strict):
    from_: str = Field(alias="from", description="debian:<suite> | scratch | oci-archive:<path> | "
                                                 "<registry ref> | image:<recipe>")
    packages: list[str] = Field(default_factory=list, description='Debian packages: "name" or "name=version"')
    pip: list[str] = Field(default_factory=list, description="PyPI requirements installed into a layer")
    copy_: list[CopySpec] = Field(default_factory=list, alias="copy")
    run: list[str] = Field(default_factory=list, description="build-time shell commands")
    steps: list[RecipeStep] = Field(default_factory=list, description="ordered steps, after pip, copy and run "
                                    "(the shorthand keys); each cached by its inputs and everything before it")
    env: dict[str, str] = Field(default_factory=dict)
    workdir: str | None = None
    user: str | None = None
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    mirror: str | None = Field(None, description="Debian mirror URL; default: the host's apt sources")
    variant: Literal["extract", "custom", "essential", "apt", "required", "minbase", "buildd",
                     "important", "standard"] = Field(
        "minbase", description="mmdebstrap variant for debian:<suite> bases")

    @field_validator("mirror")
    @classmethod
    def _one_url(cls, v: str | None) -> str | None:
        return None if v is None else check_mirror(v)

    @field_validator("from_")
    @classmethod
    def _known_source(cls, v: str) -> str:
        if not v:
            raise ValueError("from must not be empty")
        if v.startswith("debian:") and not re.fullmatch(r"debian:[a-z][a-z0-9-]*", v):
            raise ValueError(f"invalid Debian base {v!r}: use debian:<suite>, e.g. debian:bookworm")
        return v

    @field_validator("packages")
    @classmethod
    def _package_names(cls, v: list[str]) -> list[str]:
        for p in v:
            if not re.fullmatch(r"[a-z0-9][a-z0-9+.-]+(:[a-z0-9]+)?(=[A-Za-z0-9.+~:-]+)?", p):
                raise ValueError(f"invalid Debian package {p!r}: use \"name\" or \"name=version\"")
        return v


# ---- services ------------------------------------------------------------------------------
class Healthcheck(Strict):
    command: Command
    interval: Duration = 30.0
    timeout: Duration = 30.0
    retries: int = Field(3, ge=1)
    start_period: Duration = 0.0
    disable: bool = False


class Resources(Strict):
    memory: Size | None = Field(None, description="memory limit, e.g. 256M")
    cpus: float | None = Field(None, gt=0, description="CPU share, e.g. 0.5")
    pids: int | None = Field(None, ge=1, description="maximum number of processes")


class PortMapping(Strict):
    target: int = Field(ge=1, le=65535)
    published: int | None = Field(None, ge=0, le=65535, description="host port; unset = random")
    host_ip: str | None = None
    protocol: Protocol = Protocol.tcp


class VolumeMount(Strict):
    type: Literal["volume", "bind", "tmpfs"] = "volume"
    source: str | None = None
    target: str
    read_only: bool = False


Port = Annotated[PortMapping, BeforeValidator(shorthand.parse_port,
                                              json_schema_input_type=str | int | PortMapping)]
Volume = Annotated[VolumeMount, BeforeValidator(shorthand.parse_volume, json_schema_input_type=str | VolumeMount)]
EnvValue = Annotated[str, BeforeValidator(lambda v: ("true" if v else "false") if isinstance(v, bool)
                                          else str(v) if isinstance(v, int | float) else v),
                     WithJsonSchema({"type": ["string", "number", "boolean"]})]


class WatchRule(Strict):
    path: str
    action: WatchAction
    target: str | None = None
    ignore: list[str] = Field(default_factory=list)
    exec: Command | None = Field(None, description="command for sync+exec")
    initial_sync: bool = False


class Develop(Strict):
    watch: list[WatchRule] = Field(default_factory=list)


class Update(Strict):
    """How a running service's containers are replaced (up of a change, restart, scale, reload)."""
    order: UpdateOrder | None = Field(None, description="start-first (the default) starts the new container "
                                      "and waits for it to be ready before the old one stops; stop-first stops "
                                      "the old one first (the default for a service writing a named volume)")
    parallelism: int = Field(1, ge=1, description="containers of the service replaced at a time")
    monitor: Duration = Field(60.0, gt=0, description="how long a new container may take to get ready")
    failure_action: FailureAction = Field(FailureAction.rollback, description="rollback: return the service "
                                          "to what ran before; pause: stop where it failed")


class SecretSource(Strict):
    """Where a secret's value comes from, read on the host that runs the stack when it starts:
    never stored in envtool.lock, a bundle, state.json or any output."""
    file: str | None = Field(None, description="a file: relative to the project, or absolute on the host")
    environment: str | None = Field(None, description="an environment variable of the `envtool up` process")

    @model_validator(mode="after")
    def _one_source(self) -> SecretSource:
        if (self.file is None) == (self.environment is None):
            raise ValueError("a secret has exactly one of file or environment")
        return self


class ServiceSecret(Strict):
    source: str = Field(description="a [secrets.NAME]")
    target: str | None = Field(None, description="file name under /run/secrets (default: the secret's name)")
    uid: int | None = Field(None, ge=0, description="owner (default: the service's user)")
    gid: int | None = Field(None, ge=0)
    mode: int = Field(0o400, ge=0, le=0o777, description="file mode (default 0o400)")

    @field_validator("target")
    @classmethod
    def _plain_name(cls, v: str | None) -> str | None:
        if v is not None:
            name = v.removeprefix("/run/secrets/")
            if not re.fullmatch(r"[A-Za-z0-9_.][A-Za-z0-9_.-]*", name) or name in (".", ".."):
                raise ValueError("target must be a file name under /run/secrets, e.g. \"db-password\"")
            return name
        return v


ServiceSecretRef = Annotated[ServiceSecret, BeforeValidator(lambda v: {"source": v} if isinstance(v, str) else v,
                                                            json_schema_input_type=str | ServiceSecret)]


class Service(Strict):
    image: str = Field(description="a recipe name, a registry ref or oci-archive:<path>")
    command: Command | None = None
    entrypoint: Command | None = None
    environment: Annotated[dict[str, EnvValue], BeforeValidator(shorthand.parse_environment)] = Field(
        default_factory=dict)
    env_file: Annotated[list[str], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)] = Field(
        default_factory=list)
    ports: list[Port] = Field(default_factory=list)
    depends_on: Annotated[dict[str, Condition],
                          BeforeValidator(lambda v: {k: "started" for k in v} if isinstance(v, list) and all(
                              isinstance(k, str) for k in v) else v)] = (
        Field(default_factory=dict))
    replicas: int = Field(1, ge=0)
    restart: RestartPolicy = RestartPolicy.no
    resources: Resources = Field(default_factory=Resources)
    stop_signal: str = "SIGTERM"
    stop_grace_period: Duration = 10.0
    read_only: bool = False
    cap_add: list[str] = Field(default_factory=list)
    cap_drop: list[str] = Field(default_factory=list)
    volumes: list[Volume] = Field(default_factory=list)
    healthcheck: Healthcheck | None = None
    develop: Develop | None = None
    update: Update = Field(default_factory=Update)
    user: str | None = None
    workdir: str | None = None
    hostname: str | None = None
    aliases: list[Annotated[str, Field(pattern=r"^[a-zA-Z0-9]([a-zA-Z0-9_.-]*[a-zA-Z0-9])?$")]] = Field(
        default_factory=list, description="more DNS names the service answers to on the project network "
                                          "(Compose's container_name, links and network aliases)")
    init: bool = False
    secrets: list[ServiceSecretRef] = Field(default_factory=list, description="secrets to read at "
                                            "/run/secrets/NAME: read-only files on a tmpfs")
    networks: list[Annotated[str, Field(pattern=NAME_PATTERN)]] = Field(
        default_factory=list, description="the project networks the service joins (default: `default`); "
                                          "services reach, and resolve, only services sharing one")

    def update_order(self) -> tuple[str, str]:
        """(order, why envtool chose it): update.order, else start-first, unless the service writes
        a named volume (two containers of a database on one data directory corrupt it)."""
        if self.update.order is not None:
            return self.update.order.value, ""
        writes = sorted({v.source for v in self.volumes if v.type == "volume" and v.source and not v.read_only})
        if writes:
            return "stop-first", f"it writes volume {writes[0]!r} (set update.order to choose)"
        return "start-first", ""

    @field_validator("stop_signal")
    @classmethod
    def _signal(cls, v: str) -> str:
        import signal

        name = v.upper() if v.upper().startswith("SIG") else "SIG" + v.upper()
        if not hasattr(signal.Signals, name):
            raise ValueError(f"unknown signal {v!r}")
        return name


class NamedVolume(Strict):
    labels: dict[str, str] = Field(default_factory=dict)


class NamedNetwork(Strict):
    """A group of services that reach each other; services sharing none are isolated."""


class Environment(Strict):
    services: dict[str, dict[str, Any]] = Field(default_factory=dict)
    secrets: dict[str, SecretSource] = Field(default_factory=dict, description="other sources for the "
                                             "project's secrets in this environment")


class Project(Strict):
    project: ProjectSection = Field(default_factory=ProjectSection)
    images: dict[Annotated[str, Field(pattern=NAME_PATTERN)], ImageRecipe] = Field(default_factory=dict)
    services: dict[Annotated[str, Field(pattern=SERVICE_PATTERN)], Service] = Field(default_factory=dict)
    volumes: dict[Annotated[str, Field(pattern=NAME_PATTERN)], NamedVolume | None] = Field(default_factory=dict)
    networks: dict[Annotated[str, Field(pattern=NAME_PATTERN)], NamedNetwork | None] = Field(
        default_factory=dict, description="networks services join (`default` always exists)")
    secrets: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")], SecretSource] = Field(
        default_factory=dict, description="values kept out of every file envtool writes")
    environments: dict[Annotated[str, Field(pattern=NAME_PATTERN)], Environment] = Field(default_factory=dict)
    hosts: dict[Annotated[str, Field(pattern=NAME_PATTERN)], Annotated[str, Field(pattern=r"^ssh://\S+$")]] = Field(
        default_factory=dict, description="environment → the host that runs it (ssh://[user@]host[:port]), for "
                                          "`deploy` and `promote` across hosts")

    @property
    def name(self) -> str:
        assert self.project.name, "load() fills the project name"
        return self.project.name
