"""Build progress on stderr: a rich live display on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
from typing import Any


class PlainReporter:
    """One line per step; with `only_work`, steps served from the cache stay silent."""

    def __init__(self, verbose: bool = False, only_work: bool = False) -> None:
        self.verbose = verbose
        self.only_work = only_work
        self.pending: str | None = None

    def _flush(self) -> None:
        if self.pending:
            sys.stderr.write(self.pending)
            self.pending = None

    def step(self, image: str, index: int, total: int, text: str) -> None:
        self.pending = f"[{image}] step {index}/{total}: {text}\n"
        if not self.only_work:
            self._flush()

    def output(self, image: str, line: str) -> None:
        if self.verbose:
            self._flush()
            sys.stderr.write(f"[{image}]   {line}\n")

    def done(self, image: str, text: str, cached: bool, seconds: float) -> None:
        if cached and self.only_work:
            self.pending = None
            return
        self._flush()
        sys.stderr.write(f"[{image}]   {'cached' if cached else f'done in {seconds:.1f}s'}\n")


class RichReporter:
    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True)
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                 TextColumn("[dim]{task.fields[last]}"), console=self.console)
        self.task: Any = None
        self.label = ""

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def step(self, image: str, index: int, total: int, text: str) -> None:
        self.label = f"[bold cyan]{image}[/] [{index}/{total}] {text}"
        self.task = self.progress.add_task(self.label, total=None, last="")

    def output(self, image: str, line: str) -> None:
        if self.task is not None:
            self.progress.update(self.task, last=line.strip()[:60])

    def done(self, image: str, text: str, cached: bool, seconds: float) -> None:
        if self.task is not None:
            mark = "[green]✓[/]"
            self.progress.update(self.task, description=f"{mark} {self.label}", total=1, completed=1,
                                 last="cached" if cached else "")


def reporter(mode: str = "auto", only_work: bool = False) -> Any:
    """only_work: say nothing about cached steps (for `run`, where a build is a side trip)."""
    if mode == "quiet":
        from envtool.image.build import SilentReporter

        return SilentReporter()
    if mode == "plain" or (mode == "auto" and (only_work or not sys.stderr.isatty())):
        return PlainReporter(verbose=mode == "plain", only_work=only_work)
    return RichReporter()
