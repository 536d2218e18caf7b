"""JSON schema of envtool.toml, generated from the models (editor-usable: taplo, Even Better TOML)."""

from __future__ import annotations

import json
from typing import Any

from envtool.spec.model import Project

SCHEMA_ID = "https://envtool.dev/schemas/envtool.schema.json"


def project_schema() -> dict[str, Any]:
    schema = Project.model_json_schema(by_alias=True, mode="validation")
    return {**schema, "$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "title": "envtool.toml"}


def schema_text() -> str:
    return json.dumps(project_schema(), indent=2, sort_keys=True) + "\n"
