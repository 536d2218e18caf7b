from pathlib import Path

import pytest

from envtool.errors import SpecError
from envtool.spec.load import LoadedProject, load


@pytest.fixture
def project(tmp_path: Path):
    """load(toml_text) → LoadedProject; load_error(toml_text) → SpecError."""

    def _load(text: str, env: str | None = None, environ: dict[str, str] | None = None) -> LoadedProject:
        (tmp_path / "envtool.toml").write_text(text)
        return load(directory=tmp_path, env=env, environ=environ or {})

    return _load


@pytest.fixture
def load_error(project):
    def _err(text: str, env: str | None = None, environ: dict[str, str] | None = None) -> SpecError:
        with pytest.raises(SpecError) as info:
            project(text, env, environ)
        return info.value

    return _err
