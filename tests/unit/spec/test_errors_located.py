"""Every kind of bad input ends in a SpecError with file:line:col, the key path and a hint."""

BASE = """\
[images.py]
from = "debian:bookworm"

[services.web]
image = "py"
"""


def test_unknown_key_names_line_and_nearest_key(load_error):
    e = load_error(BASE + 'portz = ["80"]\n')
    assert e.key == "services.web.portz"
    assert e.location.line == 6 and e.location.column == 1
    assert e.message == "unknown key"
    assert e.hint == 'did you mean "ports"?'
    assert e.exit_code == 2


def test_wrong_type_in_array_element(load_error):
    e = load_error(BASE + 'ports = ["8080:80", "80:x"]\n')
    assert e.key == "services.web.ports[1]"
    assert (e.location.line, e.location.column) == (6, 21)
    assert "invalid port" in e.message


def test_inline_table_key(load_error):
    e = load_error(BASE + 'resources = { memory = "lots" }\n')
    assert e.key == "services.web.resources.memory"
    assert (e.location.line, e.location.column) == (6, 15)


def test_nested_unknown_key_hint(load_error):
    e = load_error(BASE + 'healthcheck = { command = ["true"], intervall = "1s" }\n')
    assert e.key == "services.web.healthcheck.intervall"
    assert e.hint == 'did you mean "interval"?'


def test_toml_syntax_error_has_line(load_error):
    e = load_error('[services.web\nimage = "x"\n')
    assert e.location.line == 1
    assert e.message.startswith("invalid TOML")


def test_all_problems_are_reported(load_error):
    e = load_error(BASE + 'replicas = "two"\nrestart = "sometimes"\n')
    keys = {e.key} | {r.key for r in e.related}
    assert keys == {"services.web.replicas", "services.web.restart"}


def test_missing_required_key(load_error):
    e = load_error('[services.web]\ncommand = ["x"]\n')
    assert e.key == "services.web.image"
    assert "required" in e.message


def test_invalid_service_name(load_error):
    e = load_error('[services."we b"]\nimage = "x/y"\n')
    assert "invalid name" in e.message


def test_unknown_recipe_hint(load_error):
    e = load_error(BASE.replace('image = "py"', 'image = "pyy"'))
    assert e.key == "services.web.image"
    assert e.hint == 'did you mean "py"?'


def test_missing_file(tmp_path):
    import pytest

    from envtool.errors import SpecError
    from envtool.spec.load import load

    with pytest.raises(SpecError, match="no envtool.toml") as info:
        load(directory=tmp_path)
    assert "envtool init" in info.value.hint
