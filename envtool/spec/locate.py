"""Key path → file:line:col over TOML text (tomllib keeps no positions), and nearest-key hints.

The scanner understands enough TOML to find where every key and array element starts: table
headers, arrays of tables, dotted and quoted keys, inline tables, arrays, all four string forms and
comments.  It never decides validity; tomllib does that first.
"""

from __future__ import annotations

import bisect
import difflib
from collections.abc import Iterable

Path = tuple[str | int, ...]

_BARE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


class LocationIndex:
    def __init__(self, text: str) -> None:
        self.text = text
        self._line_starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
        self.positions: dict[Path, int] = {}
        try:
            _Scanner(text, self.positions).scan()
        except (IndexError, ValueError):
            pass  # partial index: tomllib already accepted the text, so this only loses precision

    def line_col(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self._line_starts, offset)
        return line, offset - self._line_starts[line - 1] + 1

    def find(self, path: Iterable[str | int]) -> tuple[int, int] | None:
        """Position of the deepest known prefix of `path`."""
        p = tuple(path)
        while p:
            if p in self.positions:
                return self.line_col(self.positions[p])
            p = p[:-1]
        return None

    def exact(self, path: Iterable[str | int]) -> tuple[int, int] | None:
        off = self.positions.get(tuple(path))
        return None if off is None else self.line_col(off)


class _Scanner:
    def __init__(self, text: str, out: dict[Path, int]) -> None:
        self.t = text
        self.i = 0
        self.out = out
        self.aot: dict[Path, int] = {}

    def scan(self) -> None:
        current: Path = ()
        while self._skip_ws_comments_newlines():
            if self.t.startswith("[[", self.i):
                start = self.i
                self.i += 2
                keys = self._key_path()
                self._expect("]]")
                idx = self.aot.get(keys, -1) + 1
                self.aot[keys] = idx
                current = keys + (idx,)
                for n in range(1, len(keys) + 1):
                    self.out.setdefault(keys[:n], start)
                self.out[current] = start
            elif self.t[self.i] == "[":
                start = self.i
                self.i += 1
                keys = self._key_path()
                self._expect("]")
                current = self._resolve_aot(keys)
                for n in range(1, len(current) + 1):
                    self.out.setdefault(current[:n], start)
            else:
                self._key_value(current)

    def _resolve_aot(self, keys: Path) -> Path:
        out: list[str | int] = []
        for k in keys:
            out.append(k)
            if tuple(out) in self.aot:
                out.append(self.aot[tuple(out)])
        return tuple(out)

    def _key_value(self, prefix: Path) -> None:
        start = self.i
        keys = self._key_path()
        full = prefix + keys
        for n in range(len(prefix) + 1, len(full) + 1):
            self.out.setdefault(full[:n], start)
        self.out[full] = start
        self._skip_inline_ws()
        self._expect("=")
        self._skip_inline_ws()
        self._value(full)

    def _value(self, path: Path) -> None:
        c = self.t[self.i]
        if c == "{":
            self.i += 1
            self._skip_inline_ws()
            while self.t[self.i] != "}":
                self._key_value(path)
                self._skip_inline_ws()
                if self.t[self.i] == ",":
                    self.i += 1
                    self._skip_inline_ws()
            self.i += 1
        elif c == "[":
            self.i += 1
            n = 0
            while True:
                self._skip_ws_comments_newlines()
                if self.t[self.i] == "]":
                    self.i += 1
                    return
                self.out[path + (n,)] = self.i
                self._value(path + (n,))
                n += 1
                self._skip_ws_comments_newlines()
                if self.t[self.i] == ",":
                    self.i += 1
        elif c in "\"'":
            self._string()
        else:
            while self.i < len(self.t) and self.t[self.i] not in ",]}\n#":
                self.i += 1

    def _key_path(self) -> Path:
        keys: list[str] = []
        while True:
            self._skip_inline_ws()
            c = self.t[self.i]
            if c in "\"'":
                keys.append(self._string())
            else:
                j = self.i
                while self.i < len(self.t) and self.t[self.i] in _BARE:
                    self.i += 1
                if j == self.i:
                    raise ValueError("expected a key")
                keys.append(self.t[j:self.i])
            self._skip_inline_ws()
            if self.i < len(self.t) and self.t[self.i] == ".":
                self.i += 1
                continue
            return tuple(keys)

    def _string(self) -> str:
        t = self.t
        for quote in ('"""', "'''"):
            if t.startswith(quote, self.i):
                end = t.index(quote, self.i + 3)
                while t.startswith(quote[0], end + 3):  # up to two quotes may end the content
                    end += 1
                if quote == '"""':
                    while _escaped(t, end):
                        end = t.index(quote, end + 1)
                s = t[self.i + 3:end]
                self.i = end + 3
                return s
        q = t[self.i]
        j = self.i + 1
        while t[j] != q:
            j += 2 if (q == '"' and t[j] == "\\") else 1
        s = t[self.i + 1:j]
        self.i = j + 1
        return s.encode("utf-8").decode("unicode_escape") if q == '"' and "\\" in s else s

    def _expect(self, token: str) -> None:
        self._skip_inline_ws()
        if not self.t.startswith(token, self.i):
            raise ValueError(f"expected {token}")
        self.i += len(token)

    def _skip_inline_ws(self) -> None:
        while self.i < len(self.t) and self.t[self.i] in " \t":
            self.i += 1

    def _skip_ws_comments_newlines(self) -> bool:
        while self.i < len(self.t):
            c = self.t[self.i]
            if c in " \t\r\n":
                self.i += 1
            elif c == "#":
                while self.i < len(self.t) and self.t[self.i] != "\n":
                    self.i += 1
            else:
                return True
        return False


def _escaped(text: str, pos: int) -> bool:
    n = 0
    while pos - 1 - n >= 0 and text[pos - 1 - n] == "\\":
        n += 1
    return n % 2 == 1


def nearest(word: str, choices: Iterable[str]) -> str | None:
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def format_path(path: Iterable[str | int]) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        elif out:
            out += f".{p}" if all(c in _BARE for c in p) and p else f'."{p}"'
        else:
            out = p
    return out
