"""build, images."""

from __future__ import annotations

import contextlib

import typer

from envtool import api
from envtool.cli import render

ProgressOpt = typer.Option("auto", "--progress", help="auto | plain (with command output) | quiet")


def register(app: typer.Typer) -> None:
    app.command("build")(build)
    app.command("images")(images)


def build(ctx: typer.Context, names: list[str] = typer.Argument(None, help="Image recipes to build (default: all)."),
          progress: str = ProgressOpt,
          json_: bool = typer.Option(False, "--json", help="Print the results as JSON.")) -> None:
    """Build the project's image recipes into the local store."""
    from envtool.cli.progress import reporter

    rep = reporter(progress)
    with rep if hasattr(rep, "__enter__") else contextlib.nullcontext():
        results = api.build(ctx.obj.file, ctx.obj.directory, names or None, rep)
    if json_:
        render.print_json([{"image": r.name, "digest": r.image.manifest_digest, "size": r.image.size,
                            "cached": r.cached, "seconds": round(r.seconds, 3)} for r in results])
        return
    from envtool._util.digest import short
    from envtool._util.units import format_size

    for r in results:
        render.info(f"built {r.name}: {short(r.image.manifest_digest)} ({format_size(r.image.size)}, "
                    f"{'cached' if r.cached else f'{r.seconds:.1f}s'})")


def images(json_: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List images in the local store, with sizes."""
    rows = api.list_images()
    if json_:
        render.print_json(rows)
        return
    from envtool._util.digest import short
    from envtool._util.units import format_size

    render.table(["name", "digest", "size", "layers"],
                 [[r["name"], short(r["digest"]), format_size(r["size"]), str(r["layers"])] for r in rows])
