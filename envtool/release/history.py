"""Where releases have been: deployments on this host, promotions in the project's committed file.

    $ENVTOOL_ROOT/deployments/<project>.json   every `up` of a release on this host: release id, env,
                                               lock digest, image digests, deployed_at, healthy_at
    <project>/envtool.releases.toml            every `envtool promote`: commit it; it is the record
                                               that production runs what passed in staging

`decide_promotion` is the rule, pure: the release deployed now in the source environment, healthy
at least once there, built from the lock the project has now.
"""

from __future__ import annotations

import json
import time
import tomllib
from pathlib import Path
from typing import Any

from envtool._util.atomic import write_atomic
from envtool._util.digest import short
from envtool._util.record import dataclass
from envtool.errors import Location, RuntimeFailure, SpecError

RELEASES_FILE = "envtool.releases.toml"
HEADER = ("# envtool.releases.toml: promotion history, appended by `envtool promote`; commit it.\n"
          "# Each entry names a release (bundle) id and the image digests it runs.\n")


class PromotionRefused(RuntimeFailure):
    code = "promotion-refused"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ---- deployments on this host ---------------------------------------------------------------------
def deployments_path(store_root: Path, project: str) -> Path:
    return store_root / "deployments" / f"{project}.json"


def deployed_projects(store_root: Path) -> list[str]:
    """Every project with deployments recorded on this host."""
    return sorted(p.stem for p in (store_root / "deployments").glob("*.json"))


def deployments(store_root: Path, project: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(deployments_path(store_root, project).read_text())
    except (OSError, ValueError):
        return []
    return list(data.get("deployments") or [])


def _save(store_root: Path, project: str, records: list[dict[str, Any]]) -> None:
    path = deployments_path(store_root, project)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps({"deployments": records[-200:]}, indent=1, sort_keys=True) + "\n")


def record_deployment(store_root: Path, project: str, release: str, env: str | None, lock: str,
                      images: dict[str, str], source: str, healthy: bool,
                      environments: list[str] | None = None) -> dict[str, Any]:
    records = deployments(store_root, project)
    rec = {"release": release, "env": env, "lock": lock, "images": images, "source": source,
           "environments": sorted(environments or []), "deployed_at": now(),
           "healthy_at": now() if healthy else None}
    records.append(rec)
    _save(store_root, project, records)
    return rec


def recent_releases(records: list[dict[str, Any]], n: int) -> list[str]:
    """The last n distinct releases deployed (newest first)."""
    out: list[str] = []
    for rec in reversed(records):
        rid = rec.get("release")
        if rid and rid not in out:
            out.append(rid)
    return out[:n]


def rollback_target(records: list[dict[str, Any]], current: str | None, to: str | None
                    ) -> dict[str, Any] | None:
    """The deployment a rollback returns to: `to` (a release id or a prefix of one, its latest
    deployment), else the latest deployment of a release other than the current one."""
    for rec in reversed(records):
        rid = str(rec.get("release") or "")
        if not rid:
            continue
        if to is not None:
            if rid == to or (len(to) >= 8 and rid.removeprefix("sha256:").startswith(to.removeprefix("sha256:"))):
                return rec
        elif rid != current:
            return rec
    return None


def mark_healthy(store_root: Path, project: str, release: str, env: str | None) -> None:
    """Note the first time a deployed release was seen healthy (by up, ps, releases or promote)."""
    records = deployments(store_root, project)
    for rec in reversed(records):
        if rec["release"] == release and rec["env"] == env:
            if not rec.get("healthy_at"):
                rec["healthy_at"] = now()
                _save(store_root, project, records)
            return


def stack_healthy(rows: list[dict[str, Any]]) -> bool:
    """Every container running and healthy (or, for a one-off job, exited with 0)."""
    if not rows:
        return False
    for r in rows:
        if r.get("status") in ("running", "healthy") and r.get("health") in (None, "healthy"):
            continue
        if r.get("status") == "exited" and r.get("exit_code") == 0:
            continue
        return False
    return True


# ---- the committed promotion history -------------------------------------------------------------
def read_releases(project_dir: Path) -> list[dict[str, Any]]:
    path = project_dir / RELEASES_FILE
    if not path.exists():
        return []
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise SpecError(f"cannot read {path.name}: {e}", location=Location(str(path)),
                        hint="restore it from version control") from None
    entries = data.get("promotion") or []
    if not isinstance(entries, list):
        raise SpecError("promotion must be an array of tables ([[promotion]])", location=Location(str(path)))
    return entries


def append_release(project_dir: Path, entry: dict[str, Any]) -> Path:
    import tomli_w

    path = project_dir / RELEASES_FILE
    entries = read_releases(project_dir) + [entry]
    write_atomic(path, HEADER + "\n" + tomli_w.dumps({"promotion": entries}))
    return path


# ---- the rule ------------------------------------------------------------------------------------
@dataclass
class Current:
    """What runs now for the project on this host: from the supervisor's state."""

    release: str | None
    env: str | None
    running: bool
    healthy: bool


def decide_promotion(current: Current, history: list[dict[str, Any]], source: str, target: str,
                     lock_now: str | None, environments: list[str]) -> dict[str, Any]:
    """The deployment record to promote, or PromotionRefused saying why not."""
    if target not in environments:
        raise SpecError(f"no environment {target!r} in envtool.toml",
                        hint="environments: " + (", ".join(environments) or "none defined"))
    if target == source:
        raise SpecError("promote needs two different environments")
    if not current.running or current.env != source or not current.release:
        what = (f"the stack runs environment {current.env or 'default'!r}" if current.running
                else "no stack is running for this project")
        raise PromotionRefused(f"nothing is deployed in {source!r} on this host: {what}",
                               hint=f"deploy first: envtool up --bundle FILE --env {source}")
    rel = current.release
    record = next((r for r in reversed(history) if r["release"] == rel and r["env"] == source), None)
    if record is None:
        raise PromotionRefused(f"release {short(rel, 12)} has no deployment record in {source!r}",
                               hint=f"redeploy it: envtool up --bundle FILE --env {source}")
    if not record.get("healthy_at") and not current.healthy:
        raise PromotionRefused(f"release {short(rel, 12)} was never healthy in {source!r}",
                               hint="see `envtool ps` and `envtool logs`; fix it, make a new release, deploy "
                                    "it and promote that")
    held = record.get("environments")
    if held and target not in held:           # the release id covers its environments: it cannot grow one
        raise PromotionRefused(f"release {short(rel, 12)} holds no {target!r} environment "
                               f"(only {', '.join(held)})",
                               hint="make one bundle for both: envtool bundle -e " + " -e ".join(
                                   sorted({source, target})) + f", deploy it to {source!r} and promote that")
    if lock_now is not None and lock_now != record["lock"]:
        raise PromotionRefused(f"envtool.lock changed since release {short(rel, 12)} was made",
                               hint=f"make a new bundle, deploy it to {source!r} and promote that one")
    return record
