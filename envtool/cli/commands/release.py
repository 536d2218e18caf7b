"""bundle, promote, releases, diff, export, import."""

from __future__ import annotations

import contextlib
import json

import typer

from envtool import api
from envtool.cli import render


def register(app: typer.Typer) -> None:
    app.command("diff")(diff)
    app.command("bundle")(bundle)
    app.command("promote")(promote)
    app.command("deploy")(deploy)
    app.command("remote-have", hidden=True)(remote_have)
    app.command("remote-receive", hidden=True)(remote_receive)
    app.command("releases")(releases)
    app.command("rollback")(rollback)
    export_app = typer.Typer(help="Hand the stack to another engine: kubernetes (Kustomize) or compose.",
                             no_args_is_help=True)
    export_app.command("kubernetes")(export_kubernetes)
    export_app.command("compose")(export_compose)
    app.add_typer(export_app, name="export")
    app.command("import")(import_)

RegistryOpt = typer.Option("localhost:5000", "--registry", help="Where `envtool push` put the images; they "
                                                                 "are referenced there by digest.")


def diff(ctx: typer.Context, a: str = typer.Argument(..., help="Environment (or 'base')."),
         b: str = typer.Argument(..., help="Environment (or 'base')."),
         json_: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show what differs between two environments' resolved stacks."""
    from envtool.spec.compare import MISSING

    rows = api.diff(a, b, ctx.obj.file, ctx.obj.directory)
    if json_:
        render.print_json([{"key": k, a: None if x is MISSING else x, b: None if y is MISSING else y}
                           for k, x, y in rows])
        return
    if not rows:
        render.info(f"{a} and {b} resolve to the same stack")
        return

    def show(v: object) -> str:
        return "(unset)" if v is MISSING else json.dumps(v)

    render.table(["key", a, b], [[k, show(x), show(y)] for k, x, y in rows])


def bundle(ctx: typer.Context,
           output: str = typer.Option(..., "-o", "--output", help="The bundle file to write."),
           env: list[str] = typer.Option(None, "--env", "-e", help="Only these environments (default: all)."),
           no_compress: bool = typer.Option(False, "--no-compress", help="Write a plain tar (faster, larger)."),
           progress: str = typer.Option("auto", "--progress", help="Progress: auto | plain | quiet."),
           json_: bool = typer.Option(False, "--json", help="Print the result as JSON.")) -> None:
    """Write a release bundle: the resolved stack, the lock and every image, in one file."""
    import contextlib

    from envtool.cli.progress import reporter

    rep = reporter(progress)
    with rep if hasattr(rep, "__enter__") else contextlib.nullcontext():
        out = api.bundle(output, ctx.obj.file, ctx.obj.directory, env or None, rep, not no_compress)
    if json_:
        render.print_json(out)
        return
    render.info(f"wrote {out['path']} ({out['size'] / 1e6:.1f} MB; environments: "
                f"{', '.join(out['environments']) or 'none'})")
    typer.echo(out["release"])


def promote(ctx: typer.Context, source: str = typer.Option(..., "--from", help="Environment it passed in."),
            target: str = typer.Option(..., "--to", help="Environment it goes to."),
            release: str | None = typer.Option(None, "--release", help="Refuse unless this release id is "
                                                                         "the one deployed."),
            from_host: str | None = typer.Option(None, "--from-host", help="ssh://… running the source "
                                                                            "environment (default: [hosts])."),
            to_host: str | None = typer.Option(None, "--to-host", help="ssh://… to run the target environment "
                                                                        "(default: [hosts])."),
            remote: str | None = typer.Option(None, "--remote-envtool", help="envtool's command on the hosts."),
            json_: bool = typer.Option(False, "--json", help="Print the record as JSON.")) -> None:
    """Promote the release deployed and healthy in one environment to another, and record it in
    envtool.releases.toml.  On this host, or across hosts: the source host says what runs there,
    and that very release is deployed to the target host over SSH."""
    out = api.promote(source, target, ctx.obj.file, ctx.obj.directory, release, from_host, to_host, remote)
    if "to_host" in out:
        if json_:
            render.print_json(out)
            return
        render.info(f"promoted {out['release']} from {source} on {out['from_host']} to {target} on "
                    f"{out['to_host']} (sent {out['sent_bytes'] / 1e6:.2f} MB); recorded in {out['file']}")
        return
    if json_:
        render.print_json(out)
        return
    render.info(f"promoted {out['release']} from {source} to {target} (healthy in {source} since "
                f"{out['healthy_since']}); recorded in {out['file']}")
    render.info(f"deploy it: envtool up --bundle FILE --env {target} --release {out['release']}")


def deploy(ctx: typer.Context, host: str = typer.Argument(..., help="ssh://[user@]host[:port]"),
           env: str | None = typer.Option(None, "--env", "-e", help="The environment to run there."),
           bundle: str | None = typer.Option(None, "--bundle", help="Deploy this bundle (default: the project "
                                                                    "as it is, built and locked)."),
           remote: str | None = typer.Option(None, "--remote-envtool", help="envtool's command on the host "
                                                                            "(default: ENVTOOL_REMOTE, else envtool)."),
           progress: str = typer.Option("auto", "--progress", help="Progress: auto | plain | quiet."),
           json_: bool = typer.Option(False, "--json", help="Print the result as JSON.")) -> None:
    """Run a release on another host over SSH: only the blobs it lacks are sent, it verifies the
    release id and replaces containers start-first there.  Secrets are read on that host."""
    from envtool.cli.progress import reporter

    rep = reporter(progress, only_work=True)
    with rep if hasattr(rep, "__enter__") else contextlib.nullcontext():
        out = api.deploy(host, env, bundle, ctx.obj.file, ctx.obj.directory, remote, rep)
    if json_:
        render.print_json(out)
        return
    render.info(f"release {out['release']} runs on {out['host']}" + (f" ({env})" if env else "")
                + f": sent {out['sent_bytes'] / 1e6:.2f} MB ({out['blobs_sent']} blobs; {out['blobs_held']} "
                f"already there) in {out['seconds']:.1f}s")
    for row in out["containers"]:
        typer.echo(f"{row.get('name')}: {row.get('status')}")


def remote_have() -> None:
    """(Used by `deploy` over SSH.)  Reads a JSON list of blob digests; prints those this store holds."""
    import sys

    try:
        wanted = json.loads(sys.stdin.read() or "[]")
    except ValueError:
        wanted = []
    typer.echo(json.dumps(api.remote_have(wanted if isinstance(wanted, list) else [])))


def remote_receive(release: str = typer.Option(..., "--release"),
                   env: str | None = typer.Option(None, "--env", "-e")) -> None:
    """(Used by `deploy` over SSH.)  Reads a thin bundle on stdin, verifies it and runs it."""
    import sys

    out = api.remote_receive(sys.stdin.buffer, release, env)
    typer.echo(json.dumps({"release": out["release"], "project": out.get("project"),
                           "containers": out.get("containers", [])}, default=str))


def releases(ctx: typer.Context, json_: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show the promotion history and this host's deployments."""

    out = api.releases(ctx.obj.file, ctx.obj.directory, api.context().project)
    if json_:
        render.print_json(out)
        return
    cur = out["current"]
    typer.echo(f"project {out['project']}: " + (f"running release {cur['release']} in {cur['env'] or 'default'}"
                                               f" ({'healthy' if cur['healthy'] else 'not healthy'})"
                                               if cur["release"] else "no release running on this host"))
    back = out.get("rollback")
    typer.echo(f"rollback would return to {back['release']} in {back['env'] or 'default'} (deployed "
               f"{back['deployed_at']})" if back else "rollback: no earlier release deployed on this host")
    if out["promotions"]:
        typer.echo("\npromotions (envtool.releases.toml):")
        render.table(["promoted", "release", "from", "to", "healthy since"],
                     [[p["promoted_at"], p["release"][:19], p["from"], p["to"], p.get("healthy_since", "")]
                      for p in out["promotions"]])
    if out["deployments"]:
        typer.echo("\ndeployments on this host:")
        render.table(["deployed", "release", "env", "healthy at", "source"],
                     [[d["deployed_at"], d["release"][:19] + (" *" if d.get("current") else ""), d["env"] or "",
                       d.get("healthy_at") or "never", d.get("source", "")] for d in out["deployments"]])
        typer.echo("(* runs now)")


def rollback(ctx: typer.Context,
             to: str | None = typer.Option(None, "--to", help="Release id (or a prefix of 8+ characters) to "
                                                              "return to; default: the one deployed before."),
             json_: bool = typer.Option(False, "--json", help="Print the result as JSON.")) -> None:
    """Return this host's stack to an earlier deployed release, replacing containers start-first."""
    name = api.context().project or api.project_name(ctx.obj.file, ctx.obj.directory)

    def progress(ev: dict) -> None:
        if ev.get("event") == "action" and not json_:
            render.info(ev["text"])

    out = api.rollback(name, to, progress)
    if json_:
        render.print_json(out)
        return
    render.info(f"{name}: rolled back from {(out['from'] or 'nothing')[:19]} to release {out['release'][:19]}"
                f" ({out['env'] or 'default'})")


def _notes(out: dict) -> None:
    for n in out["info"]:
        render.info(n)
    for n in out["notes"]:
        render.print_warning(f"not exported as is: {n}")


def export_kubernetes(ctx: typer.Context,
                      output: str = typer.Option(..., "-o", "--output", help="Directory to write base/ and "
                                                                              "overlays/ into."),
                      env: list[str] = typer.Option(None, "--env", "-e", help="Only these environments' "
                                                                               "overlays (default: all)."),
                      registry: str = RegistryOpt,
                      json_: bool = typer.Option(False, "--json", help="Print the result as JSON.")) -> None:
    """Write Kubernetes manifests: a Kustomize base plus one overlay per environment."""
    out = api.export_kubernetes(output, ctx.obj.file, ctx.obj.directory, env or None, registry)
    if json_:
        render.print_json(out)
        return
    _notes(out)
    render.info(f"wrote {len(out['files'])} files under {output} (apply: kubectl apply -k {output}/overlays/ENV)")


def export_compose(ctx: typer.Context,
                   output: str | None = typer.Option(None, "-o", "--output", help="File to write (default: "
                                                                                  "standard output)."),
                   env: str | None = typer.Option(None, "--env", "-e", help="Environment overlay to apply."),
                   registry: str = RegistryOpt,
                   swarm: bool = typer.Option(False, "--swarm", help="A stack file for `docker stack deploy`: "
                                              "overlay network, dnsrr endpoints, host-mode ports, "
                                              "deploy.restart_policy.")) -> None:
    """Write a Compose file (images by digest) for docker compose or podman-compose, or for Swarm."""
    out = api.export_compose(output, ctx.obj.file, ctx.obj.directory, env, registry, swarm)
    _notes(out)
    if output:
        render.info(f"wrote {output}")
    else:
        typer.echo(out["text"], nl=False)


def import_(ctx: typer.Context, compose_file: str = typer.Argument(..., help="compose.yaml / docker-compose.yml"),
            output: str | None = typer.Option(None, "-o", "--output", help="Where to write (default: envtool.toml "
                                                                           "beside the Compose file)."),
            name: str | None = typer.Option(None, "--name", help="Project name."),
            force: bool = typer.Option(False, "--force", help="Overwrite an existing envtool.toml."),
            keep_registry: bool = typer.Option(False, "--keep-registry-images",
                                               help="Keep images envtool cannot build from Debian as registry "
                                                    "references (docker.io/library/mongo:6), pulled at up."),
            json_: bool = typer.Option(False, "--json", help="Print the result as JSON.")) -> None:
    """Convert a Compose file (and the Dockerfiles it builds) into an envtool.toml."""
    out = api.import_compose(compose_file, output, name, force, keep_registry)
    if json_:
        render.print_json(out)
        return
    for n in out["notes"]:
        render.print_warning(n)
    for f in out["support_files"]:
        render.info(f"wrote {f}")
    render.info(f"wrote {out['file']}: {len(out['services'])} services, {len(out['images'])} image recipes; "
                "next: envtool lock && envtool up")
