"""init, validate, config, schema."""

from __future__ import annotations

from pathlib import Path

import typer

from envtool import api
from envtool.cli import render, specout

EnvOpt = typer.Option(None, "--env", "-e", help="Environment overlay to apply.")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("validate")(validate)
    app.command("config")(config)
    app.command("schema")(schema)


def init(ctx: typer.Context, name: str | None = typer.Option(None, help="Project name."),
         force: bool = typer.Option(False, help="Overwrite an existing envtool.toml.")) -> None:
    """Write a working starter envtool.toml."""
    path = api.init(ctx.obj.directory, name, force)
    render.info(f"wrote {path}")


def validate(ctx: typer.Context, env: str | None = EnvOpt,
             json_: bool = typer.Option(False, "--json", help="Print the result as JSON.")) -> None:
    """Check envtool.toml (and every environment overlay) without touching anything."""
    specout.validate(ctx.obj.file, ctx.obj.directory, env, json_)


def config(ctx: typer.Context, env: str | None = EnvOpt,
           json_: bool = typer.Option(False, "--json", help="Print JSON instead of TOML.")) -> None:
    """Print the merged, normalized stack."""
    specout.config(ctx.obj.file, ctx.obj.directory, env, json_)


def schema(ctx: typer.Context,
           output: Path = typer.Option(Path("schemas/envtool.schema.json"), "-o", "--output",
                                       help="Where to write the schema; '-' for stdout."),
           ) -> None:
    """Write the JSON schema of envtool.toml (for editors)."""
    text = api.schema_text()
    if str(output) == "-":
        typer.echo(text, nl=False)
        return
    base = Path(ctx.obj.directory) if ctx.obj.directory else Path.cwd()
    target = output if output.is_absolute() else base / output
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    render.info(f"wrote {target}")
