"""The typer-free path for `validate` and `config` (cli/specout.py) against the typer commands it
stands in for, and the pydantic internals the CLI's start-up relies on."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import click
import pytest
import typer.main

from envtool.cli import specout
from envtool.cli.argv import split
from envtool.cli.root import app


def command(name: str) -> click.Command:
    return typer.main.get_command(app).commands[name]    # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["validate", "config"])
def test_the_table_has_every_option_of_the_typer_command_and_no_other(name):
    expected = {}
    for p in command(name).params:
        if not isinstance(p, click.Option) or p.name == "help":
            continue
        kind = "on" if p.is_flag else ("multi" if p.multiple else "value")
        expected.update({o: (p.name, kind) for o in p.opts})
    assert specout.SPEC_OPTIONS == expected


@pytest.mark.parametrize("argv", [[], ["--json"], ["-e", "prod"], ["--env=prod", "--json"], ["-eprod"],
                                  ["--json", "--env", "prod"]])
@pytest.mark.parametrize("name", ["validate", "config"])
def test_both_parsers_agree(name, argv):
    got = split([name, *argv], dict.fromkeys(specout.COMMANDS, specout.SPEC_OPTIONS))
    assert got is not None and got.rest == []
    with command(name).make_context(name, list(argv)) as ctx:
        typer_values = {k: v for k, v in ctx.params.items() if v not in (None, False)}
    assert got.values == typer_values


def test_global_options_reach_the_body(monkeypatch):
    seen = {}
    monkeypatch.setitem(specout.COMMANDS, "config", lambda **kw: seen.update(kw) or 0)
    run = specout.parse_fast(["-C", "/p", "--debug", "--file=x.toml", "config", "-e", "prod", "--json"])
    assert run is not None and run() == 0
    assert seen == {"directory": "/p", "file": "x.toml", "env": "prod", "json_": True}


@pytest.mark.parametrize("argv", [
    ["config", "--help"], ["validate", "-h"], ["config", "--frob"], ["config", "extra"], ["config", "-e"],
    ["-p", "x", "config"], ["config", "--json=1"], ["ps"], [], ["--help"], ["run", "img"],
])
def test_anything_else_goes_to_typer(argv):
    assert specout.parse_fast(argv) is None


def test_pydantic_still_loads_plugins_only_through_the_function_the_cli_replaces():
    """cli/app.py puts a loader without plugins in place of pydantic.plugin._loader; that holds as
    long as pydantic asks that module for get_plugins alone."""
    spec = importlib.util.find_spec("pydantic.plugin._schema_validator")
    assert spec is not None and spec.origin is not None
    text = Path(spec.origin).read_text()
    assert "from ._loader import get_plugins" in text
    root = Path(spec.origin).parents[1]
    users = [p for p in root.rglob("*.py") if "_loader" in p.read_text() and p.name != "_loader.py"]
    assert [p.name for p in users] == ["_schema_validator.py"]


def test_the_cli_builds_models_without_importing_importlib_metadata(tmp_path):
    (tmp_path / "envtool.toml").write_text('[project]\nname = "p"\n[services.web]\nimage = "debian:bookworm"\n')
    probe = ("import sys\nfrom envtool.cli.app import main\n"
             "code = main(['-C', sys.argv[1], 'validate'])\n"
             "print(code, 'importlib.metadata' in sys.modules, 'typer' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "False", "False"], out.stderr


def test_the_up_table_has_every_option_of_the_typer_command_and_no_other():
    from envtool.cli import stackup

    expected = {}
    for p in command("up").params:
        if not isinstance(p, click.Option) or p.name == "help":
            continue
        kind = "on" if p.is_flag else ("multi" if p.multiple else "value")
        expected.update({o: (p.name, kind) for o in p.opts})
    assert stackup.UP_OPTIONS == expected


@pytest.mark.parametrize("argv", [["-d"], ["--detach", "--json"], ["-d", "-e", "prod", "web", "db"],
                                  ["--progress=plain", "-d", "--locked", "-w"], ["-d", "--", "web"]])
def test_up_parsers_agree(argv):
    from envtool.cli import stackup

    got = split(["up", *argv], {"up": stackup.UP_OPTIONS})
    assert got is not None
    with command("up").make_context("up", list(argv)) as ctx:
        typer_values = {k: v for k, v in ctx.params.items() if v not in (None, False, "auto")}
    services = typer_values.pop("services", None) or []
    assert got.values == typer_values and got.rest == list(services)


def test_up_detached_reaches_its_body(monkeypatch):
    from envtool.cli import stackup

    seen = {}
    monkeypatch.delenv("ENVTOOL_PROJECT", raising=False)
    monkeypatch.setattr(stackup, "up_detached", lambda **kw: seen.update(kw) or 0)
    run = stackup.parse_fast(["-C", "/p", "up", "-d", "-e", "dev", "--json", "web"])
    assert run is not None and run() == 0
    assert seen == {"directory": "/p", "env": "dev", "json_": True, "services": ["web"]}


@pytest.mark.parametrize("argv", [
    ["up"], ["up", "web"], ["up", "-d", "--dry-run"], ["up", "-d", "--bundle", "x.tar"], ["up", "-d", "--help"],
    ["up", "web", "-d"], ["-p", "x", "up", "-d"], ["up", "-d", "--frob"], ["down"],
])
def test_anything_but_a_plain_up_d_goes_to_typer(argv, monkeypatch):
    from envtool.cli import stackup

    monkeypatch.delenv("ENVTOOL_PROJECT", raising=False)
    assert stackup.parse_fast(argv) is None


def test_up_d_with_a_project_from_the_environment_goes_to_typer(monkeypatch):
    from envtool.cli import stackup

    monkeypatch.setenv("ENVTOOL_PROJECT", "other")
    assert stackup.parse_fast(["up", "-d"]) is None
