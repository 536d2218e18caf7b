"""Cross-field checks, run after the model is bound: a list of small named functions.

Each check takes the project and its directory and yields (key path, message, hint).  Add a rule
by adding a function to CHECKS.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path as FsPath

from envtool._util.linux import CAPABILITIES, normalize_capability
from envtool.spec.imageref import ImageRef, InvalidImageRef
from envtool.spec.locate import Path, nearest
from envtool.spec.model import CopySpec, ImageRecipe, Project, WatchAction

Problem = tuple[Path, str, str | None]
Check = Callable[[Project, FsPath], Iterator[Problem]]


def is_recipe_ref(image: str) -> bool:
    """A bare name (no registry, tag or scheme) refers to an [images.NAME] recipe."""
    try:
        return ImageRef.parse(image).is_recipe
    except InvalidImageRef:
        return False


def inside(directory: FsPath, path: str) -> bool:
    full = os.path.realpath(os.path.join(directory, os.path.expanduser(path)))
    root = os.path.realpath(directory)
    return full == root or full.startswith(root + os.sep)


def check_service_images(p: Project, d: FsPath) -> Iterator[Problem]:
    for name, svc in p.services.items():
        if is_recipe_ref(svc.image) and svc.image not in p.images:
            near = nearest(svc.image, p.images)
            yield (("services", name, "image"), f"unknown image recipe {svc.image!r}",
                   f'did you mean "{near}"?' if near else "declare it under [images." + svc.image + "]")


def check_recipe_bases(p: Project, d: FsPath) -> Iterator[Problem]:
    for name, img in p.images.items():
        if img.packages and not img.from_.startswith("debian:"):
            yield (("images", name, "packages"), f"packages need a debian:<suite> base, not {img.from_!r}",
                   'install them in a step instead: steps = [{ run = "apt-get update && apt-get install -y ..." }]')
        if img.from_.startswith("image:") and img.from_[6:] not in p.images:
            yield (("images", name, "from"), f"unknown base recipe {img.from_[6:]!r}", None)


def _copies(img: ImageRecipe) -> Iterator[tuple[Path, CopySpec]]:
    for i, c in enumerate(img.copy_):
        yield ("copy", i), c
    for i, step in enumerate(img.steps):
        for j, c in enumerate(step.copy_ or ()):
            yield ("steps", i, "copy", j) if len(step.copy_ or ()) > 1 else ("steps", i, "copy"), c


def _stages(p: Project, name: str) -> list[str]:
    """The recipes an image needs built first: its image: base and what it copies from."""
    img = p.images[name]
    out = [img.from_[6:]] if img.from_.startswith("image:") else []
    return out + [c.from_ for _, c in _copies(img) if c.from_]


def check_copy_sources(p: Project, d: FsPath) -> Iterator[Problem]:
    for name, img in p.images.items():
        for where, c in _copies(img):
            key = ("images", name) + where
            if c.from_ is not None:
                if c.from_ not in p.images:
                    near = nearest(c.from_, p.images)
                    yield (key + ("from",), f"unknown image recipe {c.from_!r} to copy from",
                           f'did you mean "{near}"?' if near else "copy from names another [images.*] recipe")
                elif not c.src.startswith("/"):
                    yield (key + ("src",), f"copy from {c.from_!r}: src must be an absolute path in that image",
                           None)
            elif not inside(d, c.src):
                yield (key + ("src",), f"copy source {c.src!r} is outside the project",
                       "copy only files inside the project directory")
            elif not os.path.exists(d / c.src):
                yield (key + ("src",), f"copy source {c.src!r} does not exist", None)
        pips = (1 if img.pip else 0) + sum(1 for s in img.steps if s.pip is not None)
        if pips > 1:
            yield (("images", name, "steps"), "more than one pip step",
                   "list every requirement in one pip step: envtool.lock pins one resolution per image")


def check_stage_cycles(p: Project, d: FsPath) -> Iterator[Problem]:
    """An image: base or a copy from that leads back to the image itself."""
    for name in p.images:
        stack: list[tuple[str, list[str]]] = [(n, [name, n]) for n in _stages(p, name)]
        seen: set[str] = set()
        while stack:
            current, path = stack.pop()
            if current == name:
                yield (("images", name), "image recipes form a cycle: " + " -> ".join(path), None)
                break
            if current in seen or current not in p.images:
                continue
            seen.add(current)
            stack += [(n, path + [n]) for n in _stages(p, current)]


def check_depends_on(p: Project, d: FsPath) -> Iterator[Problem]:
    for name, svc in p.services.items():
        for dep in svc.depends_on:
            if dep == name:
                yield (("services", name, "depends_on", dep), "a service cannot depend on itself", None)
            elif dep not in p.services:
                near = nearest(dep, p.services)
                yield (("services", name, "depends_on", dep), f"unknown service {dep!r}",
                       f'did you mean "{near}"?' if near else None)
        for dep, cond in svc.depends_on.items():
            target = p.services.get(dep)
            if cond.value == "healthy" and target is not None and (
                    target.healthcheck is None or target.healthcheck.disable):
                yield (("services", name, "depends_on", dep), f"waits for {dep!r} to be healthy, but {dep!r} "
                       "has no healthcheck", f"add a healthcheck to services.{dep}, or use \"started\"")
    cycle = _find_cycle({n: list(s.depends_on) for n, s in p.services.items()})
    if cycle:
        yield (("services", cycle[0], "depends_on"), "dependency cycle: " + " -> ".join(cycle), None)


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in graph.get(n, []):
            if m not in graph or m == n:
                continue
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in graph:
        if n not in state and (found := visit(n)):
            return found
    return None


def check_volumes(p: Project, d: FsPath) -> Iterator[Problem]:
    for name, svc in p.services.items():
        for i, v in enumerate(svc.volumes):
            path: Path = ("services", name, "volumes", i)
            if v.type == "bind" and v.source is not None and not inside(d, v.source):
                yield (path, f"bind mount {v.source!r} escapes the project directory",
                       "bind mounts must stay inside the project; use a named volume instead")
            if v.type == "volume" and v.source and v.source not in p.volumes:
                yield (path, f"undeclared volume {v.source!r}", f"add [volumes.{v.source}]")


def check_aliases(p: Project, d: FsPath) -> Iterator[Problem]:
    owner: dict[str, str] = {}
    for name, svc in p.services.items():
        for i, alias in enumerate(svc.aliases):
            other = alias if alias in p.services and alias != name else owner.get(alias)
            if other is not None and other != name:
                yield (("services", name, "aliases", i), f"alias {alias!r} is already the name of service {other!r}",
                       "a DNS name answers for one service")
            owner.setdefault(alias, name)


def check_networks(p: Project, d: FsPath) -> Iterator[Problem]:
    known = set(p.networks) | {"default"}
    for name, svc in p.services.items():
        for i, net in enumerate(svc.networks):
            if net not in known:
                near = nearest(net, known)
                yield (("services", name, "networks", i), f"unknown network {net!r}",
                       f'did you mean "{near}"?' if near else f"declare it under [networks.{net}]")


def check_secrets(p: Project, d: FsPath) -> Iterator[Problem]:
    for name, svc in p.services.items():
        targets: set[str] = set()
        for i, s in enumerate(svc.secrets):
            if s.source not in p.secrets:
                near = nearest(s.source, p.secrets)
                yield (("services", name, "secrets", i), f"unknown secret {s.source!r}",
                       f'did you mean "{near}"?' if near else f"declare it under [secrets.{s.source}]")
            target = s.target or s.source
            if target in targets:
                yield (("services", name, "secrets", i), f"two secrets are both /run/secrets/{target}", None)
            targets.add(target)


def check_ports(p: Project, d: FsPath) -> Iterator[Problem]:
    seen: dict[tuple[str, int, str], str] = {}
    for name, svc in p.services.items():
        for i, port in enumerate(svc.ports):
            if not port.published:
                continue                  # replicas share a published port: the kernel balances them
            key = (port.host_ip or "*", port.published, port.protocol.value)
            for other_key, other in seen.items():
                same_port = other_key[1:] == key[1:]
                if same_port and (other_key[0] == key[0] or "*" in (other_key[0], key[0])):
                    yield (("services", name, "ports", i),
                           f"host port {port.published}/{port.protocol.value} is also published by {other!r}",
                           None)
                    break
            seen[key] = name


def check_capabilities(p: Project, d: FsPath) -> Iterator[Problem]:
    for name, svc in p.services.items():
        for key in ("cap_add", "cap_drop"):
            for i, cap in enumerate(getattr(svc, key)):
                norm = normalize_capability(cap)
                if norm != "ALL" and norm not in CAPABILITIES:
                    near = nearest(norm, CAPABILITIES)
                    yield (("services", name, key, i), f"unknown capability {cap!r}",
                           f'did you mean "{near}"?' if near else None)


def check_files(p: Project, d: FsPath) -> Iterator[Problem]:
    for name, svc in p.services.items():
        for i, f in enumerate(svc.env_file):
            if not (d / f).is_file():
                yield (("services", name, "env_file", i), f"env_file {f!r} does not exist", None)
        for i, rule in enumerate(svc.develop.watch if svc.develop else []):
            path: Path = ("services", name, "develop", "watch", i)
            if not inside(d, rule.path):
                yield (path + ("path",), f"watch path {rule.path!r} is outside the project", None)
            elif not (d / rule.path).exists():
                yield (path + ("path",), f"watch path {rule.path!r} does not exist", None)
            if rule.action in (WatchAction.sync, WatchAction.sync_restart, WatchAction.sync_exec):
                if not rule.target or not rule.target.startswith("/"):
                    yield (path + ("target",), f"action {rule.action.value!r} needs an absolute target",
                           None)
            if rule.action is WatchAction.sync_exec and not rule.exec:
                yield (path, "action 'sync+exec' needs exec = [...]", None)
            if rule.action is WatchAction.rebuild and not is_recipe_ref(svc.image):
                yield (path + ("action",), "rebuild needs an image recipe, but the service uses "
                                           f"{svc.image!r}", None)


# capabilities that make a container's root nearly the host's: accepted (the project asked for
# them), but `validate` and `up` say so, naming the service
POWERFUL = {"ALL": "every capability", "CAP_SYS_ADMIN": "CAP_SYS_ADMIN (mount, bpf, namespaces)",
            "CAP_SYS_MODULE": "CAP_SYS_MODULE (load kernel modules)",
            "CAP_SYS_PTRACE": "CAP_SYS_PTRACE (trace any process it can see)",
            "CAP_SYS_RAWIO": "CAP_SYS_RAWIO (raw I/O ports and memory)",
            "CAP_DAC_READ_SEARCH": "CAP_DAC_READ_SEARCH (open_by_handle_at: read host files, as in Shocker)",
            "CAP_NET_ADMIN": "CAP_NET_ADMIN (reconfigure its network, sniff and spoof)",
            "CAP_BPF": "CAP_BPF", "CAP_PERFMON": "CAP_PERFMON", "CAP_SYSLOG": "CAP_SYSLOG"}


def advice(p: Project) -> Iterator[tuple[Path, str]]:
    """Warnings, not errors: what the project may do but should know it does."""
    for name, svc in p.services.items():
        for i, cap in enumerate(svc.cap_add):
            norm = normalize_capability(cap)
            if norm in POWERFUL:
                yield (("services", name, "cap_add", i),
                       f"service {name!r} adds {POWERFUL[norm]}: its root comes close to the host's root; "
                       "remove it unless the service cannot work without it")


CHECKS: list[Check] = [
    check_service_images, check_recipe_bases, check_copy_sources, check_stage_cycles, check_depends_on, check_volumes, check_aliases, check_networks, check_secrets, check_ports,
    check_capabilities, check_files,
]
# what a release bundle's stack is checked with before it runs: everything but the inputs of a build
# and of the dev loop (copy sources, env files, watch paths), which a bundle does not carry
RELEASE_CHECKS: list[Check] = [c for c in CHECKS if c not in (check_copy_sources, check_files)]


def run_checks(p: Project, d: FsPath, release: bool = False) -> list[Problem]:
    return [problem for check in (RELEASE_CHECKS if release else CHECKS) for problem in check(p, d)]
