"""build, images."""

from __future__ import annotations

import contextlib

import typer

from envtool import api
from envtool.cli import render

ProgressOpt = typer.Option("auto", "--progress", help="auto | plain (with command output) | quiet")


def register(app: typer.Typer) -> None:
    app.command("lock")(lock)
    app.command("build")(build)
    app.command("images")(images)
    app.command("save")(save)
    app.command("gc")(gc)
    app.command("push")(push)
    app.command("pull")(pull)


def push(ctx: typer.Context, registry: str = typer.Argument(..., help="REGISTRY[/prefix], e.g. localhost:5000/team"),
         names: list[str] = typer.Argument(None, help="Images (default: all)."),
         tag: str = typer.Option("latest", "--tag", help="Tag to push."),
         gzip: bool = typer.Option(False, "--gzip", help="Compress layers (a smaller transfer, but a digest "
                                                         "other than the locked one)."),
         json_: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Push the project's images under their locked digests (blobs the registry has are skipped)."""
    from envtool.cli.progress import reporter

    rows = api.push(registry, ctx.obj.file, ctx.obj.directory, names or None, reporter("auto", only_work=True), tag,
                    gzip)
    if json_:
        render.print_json(rows)
        return
    for r in rows:
        render.info(f"pushed {r['ref']}@{r['digest']} ({r['uploaded_blobs']} blobs uploaded)")


def pull(ref: str = typer.Argument(..., help="REGISTRY/REPOSITORY[:TAG][@DIGEST]")) -> None:
    """Pull an image into the local store (every blob verified)."""
    image = api.pull(ref)
    render.info(f"pulled {ref}: {image.manifest_digest}")


def save(ctx: typer.Context, image: str = typer.Argument(..., help="Recipe, store name, digest or oci-archive:<path>."),
         output: str = typer.Option(..., "-o", "--output", help="Archive to write (tar)."),
         no_compress: bool = typer.Option(False, "--no-compress", help="Keep layers uncompressed."),
         ) -> None:
    """Write an image as an OCI archive (podman load / oci-archive: accept it)."""
    from envtool.cli.progress import reporter

    ref, digest = api.save(image, output, ctx.obj.file, ctx.obj.directory, not no_compress,
                           reporter("auto", only_work=True))
    render.info(f"saved {ref} ({digest}) to {output}")

def lock(ctx: typer.Context,
         update: list[str] = typer.Option([], "--update", help="Re-resolve only this image (repeatable)."),
         progress: str = ProgressOpt) -> None:
    """Resolve every image (Debian packages, copied files, run steps) and write envtool.lock."""
    from envtool.cli.progress import reporter

    rep = reporter(progress)
    with rep if hasattr(rep, "__enter__") else contextlib.nullcontext():
        path, new = api.lock(ctx.obj.file, ctx.obj.directory, update or None, rep)
    from envtool._util.digest import short

    for name, entry in sorted(new.images.items()):
        if not update or name in update:
            render.info(f"locked {name}: {short(entry.digest)} ({len(entry.packages)} packages, "
                        f"{len(entry.layers)} layers)")
    render.info(f"wrote {path}")


def build(ctx: typer.Context, names: list[str] = typer.Argument(None, help="Image recipes to build (default: all)."),
          progress: str = ProgressOpt,
          json_: bool = typer.Option(False, "--json", help="Print the results as JSON."),
          env: str | None = typer.Option(None, "--env", "-e", help="Environment (not dev: --locked is implied)."),
          locked: bool = typer.Option(False, "--locked", help="Refuse a missing lock or a result that differs."),
          ) -> None:
    """Build the project's image recipes into the local store, from envtool.lock."""
    from envtool.cli.progress import reporter

    rep = reporter(progress)
    notes: list[str] = []
    with rep if hasattr(rep, "__enter__") else contextlib.nullcontext():
        results = api.build(ctx.obj.file, ctx.obj.directory, names or None, rep, env, locked, notes)
    for n in notes:
        render.info(n)
    if json_:
        render.print_json([{"image": r.name, "digest": r.image.manifest_digest, "size": r.image.size,
                            "cached": r.cached, "seconds": round(r.seconds, 3)} for r in results])
        return
    from envtool._util.digest import short
    from envtool._util.units import format_size

    for r in results:
        render.info(f"built {r.name}: {short(r.image.manifest_digest)} ({format_size(r.image.size)}, "
                    f"{'cached' if r.cached else f'{r.seconds:.1f}s'})")


def images(ctx: typer.Context, json_: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List images in the local store, with sizes and the lock entries that use them."""
    rows = api.list_images(ctx.obj.file, ctx.obj.directory)
    if json_:
        render.print_json(rows)
        return
    from envtool._util.digest import short
    from envtool._util.units import format_size

    render.table(["name", "digest", "size", "layers", "locked by"],
                 [[r["name"], short(r["digest"]), format_size(r["size"]), str(r["layers"]), ",".join(r["locked_by"])]
                  for r in rows])


def gc() -> None:
    """Remove blobs and unpacked layers that no tagged image and no running stack uses."""
    from envtool._util.units import format_size

    freed = api.gc()
    render.info(f"removed {freed['blobs']} blobs and {freed['layers']} unpacked layers "
                f"({format_size(freed['bytes'])})")
