"""The committed schema is what the models generate, and every example validates."""

import json
from pathlib import Path

import pytest

from envtool.spec.load import load
from envtool.spec.schema import schema_text

REPO = Path(__file__).resolve().parents[3]


def test_committed_schema_is_current():
    committed = (REPO / "schemas" / "envtool.schema.json").read_text()
    assert committed == schema_text(), "schemas/envtool.schema.json is stale: run `envtool schema`"


def test_schema_is_valid_json_schema():
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(json.loads(schema_text()))


@pytest.mark.parametrize("example", sorted(p.parent.name for p in (REPO / "examples").glob("*/envtool.toml")))
def test_examples_validate(example):
    loaded = load(directory=REPO / "examples" / example, environ={})
    for env in loaded.project.environments:
        load(directory=REPO / "examples" / example, env=env, environ={})
