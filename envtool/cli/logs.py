"""Prefixed, coloured log output from the containers' log files (follow = poll for growth)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

COLORS = ["36", "33", "32", "35", "34", "91", "92", "93", "94", "95", "96"]


class LogPrinter:
    def __init__(self, files: list[tuple[str, Path]], project: str, tail: int | None = None) -> None:
        self.color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        self.project = project
        self.files = files
        self.tail = tail
        self.offsets: dict[str, int] = {}
        self.partial: dict[str, bytes] = {}
        width = max([len(self._label(n)) for n, _ in files] or [0])
        self.width = width

    def _label(self, name: str) -> str:
        return name[len(self.project) + 1:] if name.startswith(self.project + "-") else name

    def _prefix(self, name: str) -> str:
        label = self._label(name).ljust(self.width)
        if not self.color:
            return f"{label} | "
        color = COLORS[sum(map(ord, name)) % len(COLORS)]
        return f"\033[{color}m{label} |\033[0m "

    def add(self, name: str, path: Path) -> None:
        if name not in dict(self.files):
            self.files.append((name, path))
            self.width = max(self.width, len(self._label(name)))
            try:
                self.offsets[name] = path.stat().st_size
            except OSError:
                self.offsets[name] = 0

    def print_existing(self) -> None:
        for name, path in self.files:
            try:
                data = path.read_bytes()
            except OSError:
                data = b""
            lines = data.splitlines(keepends=True)
            if self.tail is not None:
                lines = lines[-self.tail:] if self.tail else []
            self._emit(name, b"".join(lines))
            self.offsets[name] = len(data)

    def poll(self) -> None:
        for name, path in list(self.files):
            try:
                size = path.stat().st_size
            except OSError:
                continue
            off = self.offsets.get(name, 0)
            if size < off:            # rotated (copy-truncate)
                off = 0
            if size > off:
                with open(path, "rb") as f:
                    f.seek(off)
                    data = f.read(size - off)
                self.offsets[name] = size
                self._emit(name, data)

    def _emit(self, name: str, data: bytes) -> None:
        data = self.partial.pop(name, b"") + data
        *lines, rest = data.split(b"\n")
        if rest:
            self.partial[name] = rest
        prefix = self._prefix(name)
        out = "".join(prefix + line.decode("utf-8", "replace") + "\n" for line in lines)
        if out:
            sys.stdout.write(out)
            sys.stdout.flush()

    def follow(self, should_stop=lambda: False, interval: float = 0.1) -> None:  # noqa: ANN001
        while not should_stop():
            self.poll()
            time.sleep(interval)
