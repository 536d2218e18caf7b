"""A readable envtool.toml from a document (what `import` writes): one [section.name] table per
image, service, volume and secret; steps, ports and copies as one inline table per line; file
modes in octal.  tomli_w would write every step as a [[table]] of its own."""

from __future__ import annotations

import json
import re
from typing import Any

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")
SUB_TABLES = ("env", "environment", "resources", "healthcheck", "update")


def key(k: str) -> str:
    return k if _BARE.match(k) else json.dumps(k)


def value(v: Any, name: str = "", indent: str = "") -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"0o{v:o}" if name == "mode" else str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{key(k)} = {value(x, k)}" for k, x in v.items()) + " }" if v else "{}"
    if isinstance(v, list):
        items = [value(x, name, indent + "  ") for x in v]
        one_line = "[" + ", ".join(items) + "]"
        if len(one_line) <= 100 and not any(isinstance(x, dict) for x in v):
            return one_line
        return "[\n" + "".join(f"{indent}  {i},\n" for i in items) + indent + "]"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def table(path: str, body: dict[str, Any]) -> str:
    lines = [f"[{path}]"]
    subs = []
    for k, v in body.items():
        if isinstance(v, dict) and v and (k in SUB_TABLES or any(isinstance(x, dict | list) for x in v.values())):
            subs.append((k, v))
        else:
            lines.append(f"{key(k)} = {value(v, k)}")
    out = "\n".join(lines) + "\n"
    for k, v in subs:
        out += "\n" + table(f"{path}.{key(k)}", v)
    return out


def dumps(document: dict[str, Any]) -> str:
    parts = []
    for section, body in document.items():
        if section == "project" or not all(isinstance(v, dict) for v in body.values()):
            parts.append(table(section, body))
            continue
        for name, entry in body.items():
            parts.append(table(f"{section}.{key(name)}", entry or {}))
    return "\n".join(parts)
