"""envtool: declarative, reproducible multi-container stacks on its own namespace runtime.

Public names are loaded lazily so that `import envtool` stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["EnvtoolError", "Location", "Project", "api", "load_project"]

_LAZY = {
    "EnvtoolError": ("envtool.errors", "EnvtoolError"),
    "Location": ("envtool.errors", "Location"),
    "Project": ("envtool.spec.model", "Project"),
    "load_project": ("envtool.api", "load_project"),
    "api": ("envtool.api", None),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'envtool' has no attribute {name!r}")
    import importlib

    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    return module if attr is None else getattr(module, attr)
