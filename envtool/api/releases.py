"""Releases: bundles, promotion between environments, and the stack handed to Kubernetes or Compose."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from envtool._util.atomic import write_atomic
from envtool.api.images import locked_build
from envtool.api.project import load_project, open_store, project_paths, sha256_file
from envtool.api.stack import service_images
from envtool.errors import EnvtoolError, SpecError
from envtool.release.assemble import environment_names, release_for, reload
from envtool.runtime.host import check_host


def bundle(output: str, file: str | None = None, directory: str | None = None, envs: list[str] | None = None,
           reporter: Any = None, compress: bool = True) -> dict[str, Any]:
    """Write a release bundle; returns {"release", "path", "size", "images", "environments"}."""
    from envtool.release import bundle as bundle_file

    check_host(need_overlay=False)
    loaded = load_project(file, directory)
    images = service_images(loaded, reporter, locked=True)
    rel = release_for(loaded, images, open_store(), envs)
    out = Path(output)
    rid = bundle_file.write(rel, open_store(), out, compress, reporter)
    return {"release": rid, "path": str(out), "size": out.stat().st_size, "images": rel.images,
            "environments": sorted(rel.stack["environments"]), "lock": rel.lock_digest}


def export_kubernetes(output: str, file: str | None = None, directory: str | None = None,
                      envs: list[str] | None = None, registry: str = "localhost:5000") -> dict[str, Any]:
    """Write a Kustomize base and overlays; returns {"files", "notes"}."""
    from envtool.release import k8s
    from envtool.release.output import write_tree

    base = load_project(file, directory)
    names = environment_names(base, envs)
    environments = {e: reload(base, e).project for e in names}
    notes: list[str] = []
    ex = k8s.export(base.project, environments, image_digests(base, None, notes), registry)
    return {"files": write_tree(Path(output), ex.files, ("base", "overlays")), "notes": ex.notes, "info": notes}


def export_compose(output: str | None, file: str | None = None, directory: str | None = None,
                   env: str | None = None, registry: str = "localhost:5000", swarm: bool = False) -> dict[str, Any]:
    """A Compose file of the resolved stack (one environment), or with swarm a stack file for
    `docker stack deploy`; returns {"text", "notes", "info"}."""

    from envtool.release.compose_out import compose
    from envtool.release.output import yaml_text

    loaded = load_project(file, directory, env)
    info: list[str] = []
    doc, notes = compose(loaded.project, image_digests(loaded, None, info), registry, swarm)
    how = (f"docker stack deploy -c FILE {loaded.name}" if swarm else f"run with -p {loaded.name}")
    text = (f"# {loaded.name}: exported by `envtool export compose`" + (" --swarm" if swarm else "") +
            (f" --env {env}" if env else "") + f"; {how}\n" + yaml_text([doc]))
    if output:
        from envtool._util.atomic import write_atomic

        write_atomic(output, text)
    return {"text": text, "notes": notes, "info": info}


def import_compose(compose_file: str, output: str | None = None, project: str | None = None,
                   force: bool = False, keep_registry: bool = False) -> dict[str, Any]:
    """Convert a Compose file into an envtool.toml beside it (or at output), with the support files
    its recipes copy; the result is loaded back to prove it valid, and nothing is written unless it
    is.  Returns {"file", "notes", "services", "images", "support_files"}."""
    import yaml

    from envtool.release import toml_out
    from envtool.release.compose_in import convert

    src = Path(compose_file)
    if not src.is_file():
        raise SpecError(f"no such file: {src}", hint="pass the path of a compose.yaml / docker-compose.yml")
    try:
        data = yaml.safe_load(src.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        from envtool.errors import Location

        raise SpecError(f"invalid YAML: {getattr(e, 'problem', None) or e}",
                        location=Location(str(src), mark.line + 1, mark.column + 1) if mark else Location(str(src))
                        ) from None
    if not isinstance(data, dict):
        raise SpecError(f"{src} is not a Compose file (no top-level mapping)")
    target = Path(output) if output else src.parent / "envtool.toml"
    if target.is_dir():
        target = target / "envtool.toml"
    if target.exists() and not force:
        raise SpecError(f"{target} already exists", hint="pass --force to overwrite it, or -o FILE")
    target.parent.mkdir(parents=True, exist_ok=True)
    result = convert(data, src.parent, project, output_dir=target.parent, keep_registry=keep_registry,
                     source=str(src))
    support = {target.parent / rel: text for rel, text in result.files.items()}
    clash = [p for p, text in support.items() if p.exists() and p.read_text() != text and not force]
    if clash:
        raise SpecError(f"{clash[0]} already exists and differs from envtool's", hint="pass --force to overwrite it")
    header = f"# Converted from {src.name} by `envtool import`.\n"
    if result.notes:
        header += "# Not converted, or approximated:\n" + "".join(f"#   - {n}\n" for n in result.notes)
    text = header + toml_out.dumps(result.document)
    written: list[Path] = []
    try:
        for path, content in support.items():      # the recipes copy them: written before the check
            if not path.exists() or path.read_text() != content:
                path.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(path, content)
                os.chmod(path, 0o755 if content.startswith("#!") else 0o644)
                written.append(path)
        staged = target.with_name(f".{target.name}.import")
        staged.write_text(text)
        try:
            load_project(str(staged.resolve()), str(target.parent.resolve()))   # valid, or nothing written
        except SpecError as e:
            staged.unlink()
            raise SpecError(f"the converted file is not valid: {e.message}", hint=e.hint) from None
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    os.replace(staged, target)
    doc = result.document
    return {"file": str(target), "notes": result.notes, "services": list(doc.get("services", {})),
            "images": list(doc.get("images", {})), "support_files": [str(p) for p in support]}


def _current(project: str) -> Any:
    """What runs now for the project on this host."""
    from envtool.release.history import Current, stack_healthy
    from envtool.stack import control, state

    paths = project_paths(project)
    data = state.load(paths)
    running = control.running(paths) and paths.socket.exists()
    rows = list(control.call(paths, {"op": "ps"}).get("containers", [])) if running else []
    return Current(data.get("release"), data.get("env"), running and bool(rows), stack_healthy(rows))


def promote(source: str, target: str, file: str | None = None, directory: str | None = None,
            release: str | None = None, from_host: str | None = None, to_host: str | None = None,
            remote: str | None = None, reporter: Any = None) -> dict[str, Any]:
    """Record that the release deployed and healthy in `source` on this host goes to `target`.
    With hosts (--from-host/--to-host, or envtool.toml's [hosts]): ask the source host what runs
    there and whether it was healthy, deploy that very release to the target host, and record it."""
    from envtool.release import history

    loaded = load_project(file, directory)
    src_url = from_host or loaded.project.hosts.get(source)
    dst_url = to_host or loaded.project.hosts.get(target)
    if src_url or dst_url:
        return _promote_across_hosts(loaded, source, target, src_url, dst_url, release, remote, reporter)
    root = open_store().root
    current = _current(loaded.name)
    if current.running and current.healthy and current.release:
        history.mark_healthy(root, loaded.name, current.release, current.env)
    record = _promotion(loaded, current, history.deployments(root, loaded.name), source, target, release)
    entry = _promoted(record, source, target)
    path = history.append_release(loaded.directory, entry)
    return {**entry, "file": str(path)}


def _promotion(loaded: Any, current: Any, deployed: list[dict[str, Any]], source: str, target: str,
               release: str | None, host: str | None = None) -> dict[str, Any]:
    """The deployment record of what runs in `source` (on this host, or on `host`, whose name then
    leads each refusal), once decide_promotion and --release agree that it goes to `target`."""
    from envtool.image.resolve import lock_path
    from envtool.release import history

    lock_file = lock_path(loaded.directory)
    lock_now = sha256_file(lock_file) if lock_file.exists() else None
    try:
        record = history.decide_promotion(current, deployed, source, target, lock_now,
                                          list(loaded.project.environments))
    except history.PromotionRefused as e:
        if host is None:
            raise
        raise history.PromotionRefused(f"{host}: {e.message}", hint=e.hint) from None
    if release and record["release"] != release:
        raise history.PromotionRefused(f"{source!r}{' on ' + host if host else ''} runs release "
                                       f"{record['release']}, not {release}", hint="deploy that release to it first")
    return record


def _promoted(record: dict[str, Any], source: str, target: str) -> dict[str, Any]:
    """The line envtool.releases.toml gets, written now."""
    from envtool.release import history

    return {"release": record["release"], "from": source, "to": target, "promoted_at": history.now(),
            "healthy_since": record.get("healthy_at") or history.now(), "deployed_at": record["deployed_at"],
            "lock": record["lock"], "images": record["images"]}


def _promote_across_hosts(loaded: Any, source: str, target: str, src_url: str | None, dst_url: str | None,
                          release: str | None, remote: str | None, reporter: Any) -> dict[str, Any]:
    import json
    import subprocess

    from envtool.release import deploy as dep
    from envtool.release import history

    if not src_url or not dst_url:
        missing = source if not src_url else target
        raise SpecError(f"no host for environment {missing!r}: promote across hosts needs both",
                        hint=f"add it to [hosts] in envtool.toml ({missing} = \"ssh://user@host\") or pass "
                             f"--{'from' if not src_url else 'to'}-host")
    src = dep.parse_target(src_url)
    remote_cmd = dep.remote_command(remote)
    asked = subprocess.run(dep.ssh_argv(src, remote_cmd, ["-p", loaded.name, "releases", "--json"]),
                           stdin=subprocess.DEVNULL, capture_output=True)
    if asked.returncode != 0:
        raise dep.failure(src, asked.returncode, asked.stderr.decode(errors="replace"), remote_cmd)
    try:
        there = json.loads(asked.stdout)
        cur = there["current"]
        current = history.Current(cur.get("release"), cur.get("env"), cur.get("release") is not None,
                                  bool(cur.get("healthy")))
        deployed = list(there.get("deployments") or [])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise dep.DeployError(f"{src}: `releases --json` answered something else",
                              hint="is the envtool there this version?") from None
    record = _promotion(loaded, current, deployed, source, target, release, str(src))
    sent = deploy(dst_url, target, None, str(loaded.file), str(loaded.directory),
                  remote, reporter, expect=record["release"])
    entry = {**_promoted(record, source, target), "from_host": str(src), "to_host": sent["host"]}
    path = history.append_release(loaded.directory, entry)
    return {**entry, "file": str(path), "sent_bytes": sent["sent_bytes"]}


def releases(file: str | None = None, directory: str | None = None, project: str | None = None
             ) -> dict[str, Any]:
    """The project's promotion history (from its committed file) and its deployments on this host."""
    from envtool.release import history

    promotions: list[dict[str, Any]] = []
    name = project
    try:
        loaded = load_project(file, directory)
        promotions = history.read_releases(loaded.directory)
        name = name or loaded.name
    except SpecError:
        if name is None:
            raise
    assert name is not None
    current = _current(name)
    if current.running and current.healthy and current.release:
        history.mark_healthy(open_store().root, name, current.release, current.env)
    deployed = history.deployments(open_store().root, name)
    now = current.release if current.running else None
    latest = next((d for d in reversed(deployed) if d.get("release") == now and d.get("env") == current.env), None)
    for d in deployed:
        d["current"] = d is latest
    back = history.rollback_target(deployed, now, None) if now else None
    return {"project": name, "current": {"release": now, "env": current.env, "healthy": current.healthy},
            "rollback": {k: back[k] for k in ("release", "env", "deployed_at")} if back else None,
            "promotions": promotions, "deployments": deployed}


def image_digests(loaded: Any, reporter: Any = None, notes: list[str] | None = None) -> dict[str, str]:
    """Manifest digest of every image the services use, without building: recipes from
    envtool.lock (which must match them), other references from the store or their source."""
    from envtool.errors import ImageNotFound
    from envtool.image.resolve import lock_path
    from envtool.lock import io as lock_io
    from envtool.lock.drift import drift
    from envtool.spec.checks import is_recipe_ref
    from envtool.spec.imageref import ImageRef

    refs = sorted({s.image for s in loaded.project.services.values()})
    recipes = [r for r in refs if is_recipe_ref(r)]
    out: dict[str, str] = {}
    if recipes:
        lock_file = lock_io.read(lock_path(loaded.directory))
        if lock_file is not None and not drift(loaded.project.images, lock_file, recipes):
            out.update({r: lock_file.images[r].digest for r in recipes})
        else:                                  # as `build` does: lock (or say why not) first
            check_host(need_overlay=False)
            built = locked_build(loaded, recipes, reporter, False, notes)
            out.update({r: built[r].image.manifest_digest for r in recipes})
    for r in refs:
        if r in out:
            continue
        pinned = ImageRef.parse(r).digest if not is_recipe_ref(r) else None
        if pinned:
            out[r] = pinned
            continue
        try:
            out[r] = service_images(type(loaded)(loaded.project.model_copy(update={"services": {
                k: v for k, v in loaded.project.services.items() if v.image == r}}), loaded.file, loaded.directory,
                loaded.env, []))[r].manifest_digest
        except EnvtoolError as e:
            raise ImageNotFound(f"cannot resolve image {r!r} to a digest: {e.message}", hint=e.hint) from None
    return out


# ---- deploy over SSH -------------------------------------------------------------------------------
def deploy(url: str, env: str | None = None, bundle: str | None = None, file: str | None = None,
           directory: str | None = None, remote: str | None = None, reporter: Any = None,
           expect: str | None = None) -> dict[str, Any]:
    """Send a release to the host at `url` (ssh://[user@]host[:port]) and run it there: only the
    blobs it lacks travel, it verifies everything against the release id and runs the release in
    `env` with start-first replacement.  Returns {"release", "host", "env", "sent_bytes",
    "blobs_sent", "blobs_held", "containers"}."""
    import json
    import subprocess
    import sys
    import tempfile
    import time

    from envtool.release import bundle as bundle_file
    from envtool.release import deploy as dep

    target = dep.parse_target(url)
    remote_cmd = dep.remote_command(remote)
    check_host(need_overlay=False)
    store = open_store()
    if bundle is not None:
        rel = bundle_file.read(Path(bundle), store)
    else:
        loaded = load_project(file, directory)
        images = service_images(loaded, reporter, locked=True)
        rel = release_for(loaded, images, store)     # every environment: one release id, staging to production
    if expect is not None and rel.id != expect:
        from envtool.release.history import PromotionRefused

        raise PromotionRefused(f"the project here is release {rel.id}, not {expect}, the one to promote",
                               hint="check out (and lock) what the source environment runs, then promote again")
    if env is not None and env not in rel.stack["environments"]:
        raise SpecError(f"the release has no environment {env!r}",
                        hint=f"it has: {', '.join(sorted(rel.stack['environments'])) or 'none'}")
    wanted = bundle_file.release_blobs(rel, store)

    def ssh(args: list[str], stdin: Any = None, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        try:
            return subprocess.run(dep.ssh_argv(target, remote_cmd, args), stdin=stdin, input=data,
                                  capture_output=True)
        except FileNotFoundError as e:
            raise dep.DeployError(f"cannot run ssh: {e.strerror}: {e.filename}",
                                  hint="apt-get install openssh-client, or set ENVTOOL_SSH") from None

    started = time.monotonic()
    have = ssh(["remote-have"], data=json.dumps(wanted).encode())
    if have.returncode != 0:
        raise dep.failure(target, have.returncode, have.stderr.decode(errors="replace"), remote_cmd)
    try:
        held = {d for d in json.loads(have.stdout) if d in wanted}
    except (ValueError, TypeError):
        raise dep.DeployError(f"{target}: `{' '.join(remote_cmd)} remote-have` answered something else",
                              hint="is the envtool there this version?") from None
    with tempfile.TemporaryFile(dir=store.tmp_dir) as thin:
        bundle_file.write(rel, store, thin, compress=True, reporter=reporter, skip=frozenset(held))
        sent = thin.tell()
        thin.seek(0)
        args = ["remote-receive", "--release", rel.id, *(["--env", env] if env else [])]
        got = ssh(args, stdin=thin)
    err = got.stderr.decode(errors="replace")
    if got.returncode != 0:
        raise dep.failure(target, got.returncode, err, remote_cmd)
    try:
        result = json.loads(got.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise dep.DeployError(f"{target}: the remote envtool ran the release but answered no result",
                              hint=err.strip().splitlines()[-1] if err.strip() else None) from None
    for line in err.splitlines():           # the remote's own warnings (a secret's source, limits …)
        if line.startswith("warning"):
            sys.stderr.write(f"{target}: {line}\n")
    return {"release": rel.id, "host": str(target), "env": env, "project": result.get("project"),
            "sent_bytes": sent, "blobs_sent": len(wanted) - len(held), "blobs_held": len(held),
            "seconds": round(time.monotonic() - started, 2), "containers": result.get("containers", [])}


def remote_have(digests: list[str]) -> list[str]:
    """The side of `deploy` on the host: which of these blobs this store holds."""
    store = open_store()
    return [d for d in digests if isinstance(d, str) and d.startswith("sha256:") and len(d) == 71
            and all(c in "0123456789abcdef" for c in d[7:]) and store.has_blob(d)]


def remote_receive(stream: Any, release: str, env: str | None = None) -> dict[str, Any]:
    """The side of `deploy` on the host: read the thin bundle from `stream`, verify it is release
    `release` (blobs it did not carry are re-hashed here), then run it as `up -d --bundle` does."""
    import shutil
    import tempfile

    from envtool.api.stack import up_bundle

    check_host(need_overlay=False)
    store = open_store()
    with tempfile.NamedTemporaryFile(dir=store.tmp_dir, prefix="deploy-", suffix=".bundle") as f:
        shutil.copyfileobj(stream, f, 1 << 20)
        f.flush()
        final, rid = up_bundle(f.name, env, expect=release, thin=True, origin="deploy over ssh")
    return {**final, "release": rid}
