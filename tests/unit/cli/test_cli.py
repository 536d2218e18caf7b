"""The CLI is a thin skin: exit codes, one-line errors, --json, no tracebacks."""

import json
import os
import subprocess
import sys

import pytest

from envtool.cli.app import main


def run_main(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_bad_toml_exits_2_with_location(tmp_path, capsys):
    (tmp_path / "envtool.toml").write_text('[services.web]\nimage = "x/y"\nportz = 1\n')
    code, out, err = run_main(["-C", str(tmp_path), "validate"], capsys)
    assert code == 2
    assert f"{tmp_path}/envtool.toml:3:1: services.web.portz: unknown key" in err
    assert 'hint: did you mean "ports"?' in err
    assert "Traceback" not in err


def test_syntax_error_exits_2(tmp_path, capsys):
    (tmp_path / "envtool.toml").write_text('[services\n')
    code, _, err = run_main(["-C", str(tmp_path), "validate"], capsys)
    assert code == 2 and "envtool.toml:1:" in err and "invalid TOML" in err


def test_init_then_validate_and_config_json(tmp_path, capsys):
    assert run_main(["-C", str(tmp_path), "init", "--name", "demo"], capsys)[0] == 0
    code, out, _ = run_main(["-C", str(tmp_path), "validate", "--json"], capsys)
    assert code == 0 and json.loads(out)["project"] == "demo"
    code, out, _ = run_main(["-C", str(tmp_path), "config", "--json"], capsys)
    data = json.loads(out)
    assert data["services"]["web"]["ports"][0]["published"] == 8000
    assert data["services"]["web"]["healthcheck"]["interval"] == "2s"
    code, _, err = run_main(["-C", str(tmp_path), "init"], capsys)
    assert code == 2 and "already exists" in err


def test_config_toml_output_round_trips(tmp_path, capsys):
    run_main(["-C", str(tmp_path), "init"], capsys)
    code, out, _ = run_main(["-C", str(tmp_path), "config"], capsys)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "envtool.toml").write_text(out)
    assert run_main(["-C", str(tmp_path / "sub"), "validate"], capsys)[0] == 0


def test_unknown_command_is_usage_error(capsys):
    code, _, err = run_main(["frobnicate"], capsys)
    assert code == 2 and "No such command" in err


def test_schema_to_stdout(capsys):
    code, out, _ = run_main(["schema", "-o", "-"], capsys)
    assert code == 0 and json.loads(out)["title"] == "envtool.toml"


@pytest.mark.parametrize("args", [["--help"], ["validate", "--help"]])
def test_help_is_fast_enough_to_not_import_heavy_modules(args):
    code = ("import sys; from envtool.cli.app import main\n"
            f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('pyroute2', 'pyseccomp', 'watchfiles', 'rich.progress', 'envtool.runtime.launcher')"
            " if m in sys.modules]\nprint(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(("args", "absent"), [
    (["run", "--rm", "sha256:" + "0" * 64, "true"], ["typer", "click", "pydantic", "rich"]),  # fast path
    (["-C", "examples/shop", "ps"], ["pydantic", "rich"]),                              # name only
    (["-C", "examples/shop", "images"], ["pydantic", "rich"]),
])
def test_commands_import_only_what_they_need(args, absent, tmp_path):
    from tests.conftest import REPO

    code = ("import sys; from envtool.cli.app import main\n"
            f"main({args!r})\n"
            f"print([m for m in {absent!r} if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "ENVTOOL_ROOT": str(tmp_path)})
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stderr


def test_diff_between_environments(capsys):
    from tests.conftest import REPO

    shop = str(REPO / "examples" / "shop")
    code, out, _ = run_main(["-C", shop, "diff", "staging", "production", "--json"], capsys)
    assert code == 0
    rows = {r["key"]: (r["staging"], r["production"]) for r in json.loads(out)}
    assert rows["services.api.replicas"] == (2, 3)
    assert rows["services.api.environment.LOG_LEVEL"] == (None, "warning")
    code, out, _ = run_main(["-C", shop, "diff", "base", "staging"], capsys)
    assert code == 0 and "services.api.replicas" in out
    code, _, err = run_main(["-C", shop, "diff", "staging", "prod"], capsys)
    assert code == 2 and "prod" in err and "production" in err


def test_a_commands_context_does_not_outlive_it(tmp_path, capsys, monkeypatch):
    """-p NAME is that command's; a later library call in the same process sees the environment's
    root and no project (a stale context once sent in-process calls to another store)."""
    from envtool import api

    monkeypatch.setenv("ENVTOOL_ROOT", str(tmp_path / "root-a"))
    monkeypatch.delenv("ENVTOOL_PROJECT", raising=False)
    (tmp_path / "envtool.toml").write_text('[project]\nname = "demo"\n')
    assert run_main(["-p", "other", "-C", str(tmp_path), "validate"], capsys)[0] == 0
    monkeypatch.setenv("ENVTOOL_ROOT", str(tmp_path / "root-b"))
    ctx = api.context()
    assert ctx.project is None and ctx.root == tmp_path / "root-b"
    assert api.configure(project="x").project == "x" and api.context().root == tmp_path / "root-b"
    api.reset()
    assert api.context().project is None
