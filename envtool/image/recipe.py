"""An image recipe → an ordered list of build steps (pure; printable with --dry-run).

Every step has a cache key chained from the previous step's key, its own description and the
digest of its inputs (for copy: the content of the copied tree), as in apko's config → build.
"""

from __future__ import annotations

from typing import Any

from envtool._util.digest import canonical_json, sha256_bytes
from envtool._util.record import asdict, dataclass, field
from envtool.errors import UsageError
from envtool.spec.model import ImageRecipe

EPOCH = 0   # SOURCE_DATE_EPOCH for every layer unless the environment sets one


@dataclass(frozen=True)
class Base:
    kind: str                      # debian | scratch | oci-archive | image | registry
    ref: str                       # suite, path, recipe name or registry reference
    packages: tuple[str, ...] = ()
    variant: str = "minbase"
    mirror: str | None = None

    def describe(self) -> str:
        if self.kind == "debian":
            extra = f" + {len(self.packages)} packages" if self.packages else ""
            return f"debian:{self.ref} ({self.variant}){extra}"
        return f"{self.kind}:{self.ref}" if self.kind != "scratch" else "scratch"


@dataclass(frozen=True)
class Copy:
    src: str
    dst: str
    chown: str | None = None
    mode: int | None = None
    source: str | None = None      # another recipe of the project (multi-stage); None: the project dir

    def describe(self) -> str:
        return f"copy {self.source + ':' if self.source else ''}{self.src} → {self.dst}"


@dataclass(frozen=True)
class Run:
    command: str
    pip: tuple[str, ...] = ()
    workdir: str | None = None

    def describe(self) -> str:
        if self.pip:
            return f"pip install {' '.join(self.pip)}"
        return f"run {self.command}" + (f" (in {self.workdir})" if self.workdir else "")


@dataclass(frozen=True)
class Config:
    env: tuple[tuple[str, str], ...] = ()
    workdir: str | None = None
    user: str | None = None
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None


Step = Base | Copy | Run


@dataclass(frozen=True)
class Plan:
    name: str
    base: Base
    steps: tuple[Copy | Run, ...]
    config: Config
    epoch: int = EPOCH
    inputs: dict[str, Any] = field(default_factory=dict, compare=False)

    def describe(self) -> list[str]:
        return [self.base.describe()] + [s.describe() for s in self.steps]


def parse_base(ref: str) -> Base:
    if ref == "scratch":
        return Base("scratch", "")
    for prefix in ("debian", "oci-archive", "image"):
        if ref.startswith(prefix + ":"):
            return Base(prefix, ref[len(prefix) + 1:])
    return Base("registry", ref)


def pip_command(requirements: tuple[str, ...]) -> str:
    """Deterministic pip install: no bytecode, no cache, no version check, into the system Python."""
    quoted = " ".join("'" + r.replace("'", "'\\''") + "'" for r in requirements)
    return ("PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 python3 -m pip install --no-compile "
            f"--break-system-packages --root-user-action=ignore {quoted}")


def plan_recipe(name: str, recipe: ImageRecipe, epoch: int = EPOCH) -> Plan:
    base = parse_base(recipe.from_)
    if base.kind == "debian":
        base = Base("debian", base.ref, tuple(sorted(recipe.packages)), recipe.variant, recipe.mirror)
    elif recipe.packages:
        raise UsageError(f"image {name!r}: packages need a debian:<suite> base, not {recipe.from_!r}",
                         hint="install them with run = [\"apt-get install -y ...\"] instead")
    steps: list[Copy | Run] = []
    if recipe.pip:
        reqs = tuple(recipe.pip)
        steps.append(Run(pip_command(reqs), reqs))
    steps += [Copy(c.src, c.dst, c.chown, c.mode, c.from_) for c in recipe.copy_]
    steps += [Run(cmd) for cmd in recipe.run]
    for s in recipe.steps:                    # the ordered steps follow the shorthand keys
        if s.run is not None:
            steps.append(Run(s.run, workdir=s.workdir))
        elif s.pip is not None:
            steps.append(Run(pip_command(tuple(s.pip)), tuple(s.pip)))
        else:
            steps += [Copy(c.src, c.dst, c.chown, c.mode, c.from_) for c in s.copy_ or ()]
    if sum(1 for s in steps if isinstance(s, Run) and s.pip) > 1:
        raise UsageError(f"image {name!r}: more than one pip step",
                         hint="list every requirement in one pip step: envtool.lock pins one resolution per image")
    config = Config(tuple(sorted(recipe.env.items())), recipe.workdir, recipe.user,
                    tuple(recipe.entrypoint) if recipe.entrypoint is not None else None,
                    tuple(recipe.cmd) if recipe.cmd is not None else None)
    return Plan(name, base, tuple(steps), config, epoch)


def copy_sources(plan: Plan) -> list[str]:
    """The other recipes this plan copies from (built before it)."""
    return sorted({s.source for s in plan.steps if isinstance(s, Copy) and s.source})


# fields added after 1.0: left out of a step's key while unset, so caches and locks stay valid
_LATER_FIELDS = ("source", "workdir")


def step_key(parent: str, step: Step | Config, input_digest: str = "") -> str:
    fields = {k: v for k, v in asdict(step).items() if not (k in _LATER_FIELDS and v is None)}
    doc = {"parent": parent, "type": type(step).__name__, "step": fields, "input": input_digest}
    return sha256_bytes(canonical_json(doc))
