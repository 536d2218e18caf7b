"""${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, $VAR and $$ over the raw TOML tree.

The environment is passed in; this module never reads os.environ.
"""

from __future__ import annotations

import re
from typing import Any

from envtool._util.record import dataclass, field
from envtool.spec.locate import Path

_TOKEN = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*)|(?P<invalid>\{[^}]*\}?))"
)


class InterpolationError(ValueError):
    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path


@dataclass
class Interpolation:
    env: dict[str, str]
    unset: list[tuple[Path, str]] = field(default_factory=list)

    def tree(self, value: Any, path: Path = ()) -> Any:
        if isinstance(value, str):
            return self.string(value, path)
        if isinstance(value, dict):
            return {k: self.tree(v, path + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.tree(v, path + (i,)) for i, v in enumerate(value)]
        return value

    def string(self, text: str, path: Path) -> str:
        if "$" not in text:
            return text

        def sub(m: re.Match[str]) -> str:
            if m["escaped"]:
                return "$"
            if m["invalid"] is not None:
                raise InterpolationError(path, f"invalid interpolation {m.group(0)!r}: use ${{NAME}} "
                                               "or ${NAME:-default}; write $$ for a literal $")
            name = m["braced"] or m["bare"]
            op, arg = m["op"], m["arg"] or ""
            value = self.env.get(name)
            empty = value is None or (op is not None and op.startswith(":") and value == "")
            if op in (":-", "-") and (value is None if op == "-" else empty):
                return self.string(arg, path)
            if op in (":?", "?") and (value is None if op == "?" else empty):
                raise InterpolationError(path, f"required variable {name} is not set"
                                               + (f": {arg}" if arg else ""))
            if value is None:
                self.unset.append((path, name))
                return ""
            return value

        return _TOKEN.sub(sub, text)


def read_dotenv(text: str) -> dict[str, str]:
    """KEY=value lines; quotes stripped; `export ` prefixes and comments allowed."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", key):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
            if raw.strip().split("=", 1)[1].strip().startswith('"'):
                value = value.replace("\\n", "\n")
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        out[key] = value
    return out
