"""Writing exports: plain YAML documents, and a tree of them replaced in one step."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


def yaml_text(docs: list[Any]) -> str:
    """Plain YAML documents: keys in the order given, no anchors or aliases."""
    import yaml

    class Plain(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return yaml.dump_all(docs, Dumper=Plain, sort_keys=False, default_flow_style=False, width=120)


def write_tree(target: Path, files: dict[str, Any], owned: tuple[str, ...]) -> list[str]:
    """Write YAML documents under target, replacing the subtrees envtool owns there in one step."""
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target, prefix=".export-"))
    try:
        for rel, docs in sorted(files.items()):
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(yaml_text(docs if isinstance(docs, list) else [docs]))
        for sub in owned:
            shutil.rmtree(target / sub, ignore_errors=True)
            if (staging / sub).exists():
                os.rename(staging / sub, target / sub)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [str(target / rel) for rel in sorted(files)]
