"""The red team's attacks, performed for real against harmless victims under temp dirs.  Each test
fails on a tree without the fix it names (see docs/concepts/runtime.md, "Security model")."""

from pathlib import Path

from tests.integration.conftest import envtool, probe  # noqa: F401  (fixtures)
from tests.integration.stack.conftest import Stack, stack  # noqa: F401  (fixtures)

ATTACKS = Path(__file__).parent / "attacks"


def arm(project_dir: Path) -> str:
    """Copy the attack scripts into the project (bind sources must stay inside it); returns the
    volume entry that mounts them at /attack."""
    import shutil

    shutil.copytree(ATTACKS, project_dir / "attack", dirs_exist_ok=True)
    return "./attack:/attack:ro"
