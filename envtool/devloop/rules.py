"""Changed paths × watch rules → one batch of actions per service (pure).

A burst of changes (a `git checkout` touching 500 files) becomes, per service, one sync of every
changed file followed by at most one restart, exec or rebuild: a rebuild supersedes the rest.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from envtool._util.ignore import ignored
from envtool._util.record import dataclass, field

SYNC_ACTIONS = ("sync", "sync+restart", "sync+exec")


@dataclass(frozen=True)
class Rule:
    service: str
    path: str                     # absolute host path (file or directory)
    action: str                   # sync | restart | sync+restart | sync+exec | rebuild
    target: str | None = None     # absolute container path for sync actions
    ignore: tuple[str, ...] = ()
    exec: tuple[str, ...] = ()
    initial_sync: bool = False


@dataclass(frozen=True)
class FileSync:
    source: str                   # host path (sync reads the disk: there or not, that decides)
    target: str                   # container path


@dataclass
class ServiceBatch:
    service: str
    files: dict[str, FileSync] = field(default_factory=dict)     # by container path
    restart: bool = False
    exec: list[tuple[str, ...]] = field(default_factory=list)
    rebuild: bool = False

    def empty(self) -> bool:
        return not (self.files or self.restart or self.exec or self.rebuild)


def match(rule: Rule, path: str, project_patterns: list[str], project_dir: str) -> str | None:
    """The path relative to the rule's root ("." for the root itself) when the rule applies."""
    root = rule.path.rstrip("/")
    if path == root:
        rel = "."
    elif path.startswith(root + "/"):
        rel = path[len(root) + 1:]
        if ignored(rel, rule.ignore):
            return None
    else:
        return None
    if ignored(os.path.relpath(path, project_dir), project_patterns):
        return None
    return rel


def plan(changes: Iterable[tuple[str, str]], rules: list[Rule], project_dir: str,
         project_patterns: list[str]) -> list[ServiceBatch]:
    """changes: (kind, absolute path); the kind is informative only: whether a path was deleted is
    read from the disk when it is synced, since one batch may report a path both deleted and added."""
    batches: dict[str, ServiceBatch] = {}
    for _kind, path in changes:
        for rule in rules:
            rel = match(rule, path, project_patterns, project_dir)
            if rel is None:
                continue
            b = batches.setdefault(rule.service, ServiceBatch(rule.service))
            if rule.action == "rebuild":
                b.rebuild = True
                continue
            if rule.action in SYNC_ACTIONS and rule.target:
                target = rule.target if rel == "." else os.path.join(rule.target, rel)
                b.files[target] = FileSync(path, target)
            if rule.action in ("restart", "sync+restart"):
                b.restart = True
            if rule.action == "sync+exec" and rule.exec not in b.exec:
                b.exec.append(rule.exec)
    out = []
    for b in batches.values():
        if b.rebuild:                      # a rebuild recreates the service: nothing else matters
            b.files, b.restart, b.exec = {}, False, []
        if not b.empty():
            out.append(b)
    return sorted(out, key=lambda b: b.service)


def initial(files: Iterable[str], rules: list[Rule], project_dir: str, project_patterns: list[str]
            ) -> list[ServiceBatch]:
    """The files under rules with initial_sync (listed by the caller: see `initial_files`), as one
    sync batch per service, without restarts or execs."""
    changes = [("added", f) for f in files]
    batches = plan(changes, [r for r in rules if r.initial_sync], project_dir, project_patterns)
    for b in batches:
        b.restart, b.exec = False, []
    return batches

