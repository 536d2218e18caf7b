"""The typer-free parser for `envtool run` (cli/oneoff.py) against the typer command it stands in
for: the same options, and the same values for the same argv."""

import click
import pytest
import typer.main

from envtool._util import record
from envtool.cli.argv import GLOBALS
from envtool.cli.oneoff import CLI_ONLY, OPTION_FIELDS, RUN_OPTIONS, RunArgs, parse_fast
from envtool.cli.root import app


def run_command() -> click.Command:
    return typer.main.get_command(app).commands["run"]    # type: ignore[attr-defined]


def test_the_table_has_every_option_of_the_typer_command_and_no_other():
    expected = {}
    for p in run_command().params:
        if not isinstance(p, click.Option) or p.name == "help":
            continue
        if p.is_flag:
            expected.update({o: (p.name, "on") for o in p.opts})
            expected.update({o: (p.name, "off") for o in p.secondary_opts})
        else:
            expected.update({o: (p.name, "multi" if p.multiple else "value") for o in p.opts})
    assert RUN_OPTIONS == expected


def as_params(args: RunArgs) -> dict:
    """RunArgs as the typer command's parameter names → values."""
    renamed = {field: param for param, field in OPTION_FIELDS.items()}
    out = {renamed.get(k, k): v for k, v in record.asdict(args.options).items()}
    out.update({k: getattr(args, k) for k in CLI_ONLY}, image=args.image)
    return out


def test_the_defaults_are_the_typer_command_defaults():
    defaults = as_params(RunArgs.of({"image": "img"}))
    for p in run_command().params:
        if isinstance(p, click.Option) and p.name in defaults:
            assert defaults[p.name] == (list(p.default) if p.multiple else p.default), p.name


def typer_values(argv: list[str]) -> dict:
    """What click makes of `run ARGV`: parameter name → value."""
    with run_command().make_context("run", list(argv)) as ctx:
        values = dict(ctx.params)
    values["command"] = list(values.pop("command") or [])
    for k, v in values.items():
        if isinstance(v, tuple):
            values[k] = list(v)
    return values


@pytest.mark.parametrize("argv", [
    ["img"],
    ["img", "sh", "-c", "echo $A"],
    ["-e", "A=1", "--env", "B=2", "-v", "/a:/b:ro", "--memory=64M", "-m", "32M", "img", "true"],
    ["--cpus", "0.5", "--pids", "12", "-t", "-i", "--no-rm", "--no-init", "--read-only", "img"],
    ["--name", "x", "--hostname=h", "-u", "1:2", "-w/tmp", "--cap-add", "NET_RAW", "--cap-drop", "ALL", "img"],
    ["--entrypoint", "/bin/sh", "--stop-timeout", "2", "--progress", "plain", "--rm", "--init", "img", "-x"],
    ["--", "img", "--not-an-option"],
    ["-it", "img"], ["-ti", "img"],
])
def test_both_parsers_agree(argv):
    fast = parse_fast(["run", *argv])
    assert fast is not None
    assert as_params(fast) == typer_values(argv)


def test_global_options_before_run():
    got = parse_fast(["-C", "/p", "--debug", "--file=x.toml", "run", "img"])
    assert got is not None and (got.directory, got.file, got.image) == ("/p", "x.toml", "img")
    assert set(GLOBALS) == {"-C", "--directory", "-f", "--file"}


@pytest.mark.parametrize("argv", [
    ["run"], ["run", "--help"], ["run", "-h"], ["run", "--frob", "img"], ["run", "--cpus", "abc", "img"],
    ["run", "--pids"], ["run", "-itm", "img"], ["-p", "x", "run", "img"], ["ps"], [], ["--help"],
    ["run", "--rm=1", "img"],
])
def test_anything_else_goes_to_typer(argv):
    assert parse_fast(argv) is None
