"""bundle, promote, releases, diff, export, import."""

from __future__ import annotations

import json

import typer

from envtool import api
from envtool.cli import render


def register(app: typer.Typer) -> None:
    app.command("diff")(diff)
    app.command("bundle")(bundle)
    app.command("promote")(promote)
    app.command("releases")(releases)


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
            json_: bool = typer.Option(False, "--json", help="Print the record as JSON.")) -> None:
    """Promote the release deployed and healthy in one environment (on this host) to another, and
    record it in envtool.releases.toml."""
    out = api.promote(source, target, ctx.obj.file, ctx.obj.directory, release)
    if json_:
        render.print_json(out)
        return
    render.info(f"promoted {out['release']} from {source} to {target} (healthy in {source} since "
                f"{out['healthy_since']}); recorded in {out['file']}")
    render.info(f"deploy it: envtool up --bundle FILE --env {target} --release {out['release']}")


def releases(ctx: typer.Context, json_: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show the promotion history and this host's deployments."""
    import os

    out = api.releases(ctx.obj.file, ctx.obj.directory, os.environ.get("ENVTOOL_PROJECT"))
    if json_:
        render.print_json(out)
        return
    cur = out["current"]
    typer.echo(f"project {out['project']}: " + (f"running release {cur['release']} in {cur['env'] or 'default'}"
                                               f" ({'healthy' if cur['healthy'] else 'not healthy'})"
                                               if cur["release"] else "no release running on this host"))
    if out["promotions"]:
        typer.echo("\npromotions (envtool.releases.toml):")
        render.table(["promoted", "release", "from", "to", "healthy since"],
                     [[p["promoted_at"], p["release"][:19], p["from"], p["to"], p.get("healthy_since", "")]
                      for p in out["promotions"]])
    if out["deployments"]:
        typer.echo("\ndeployments on this host:")
        render.table(["deployed", "release", "env", "healthy at", "source"],
                     [[d["deployed_at"], d["release"][:19], d["env"] or "", d.get("healthy_at") or "never",
                       d.get("source", "")] for d in out["deployments"]])
