"""Build progress on stderr: a rich live display on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
from typing import Any


class PlainReporter:
    """One line per step, each prefixed by its image (images build side by side); with
    `only_work`, steps served from the cache stay silent."""

    def __init__(self, verbose: bool = False, only_work: bool = False) -> None:
        import threading

        self.verbose = verbose
        self.only_work = only_work
        self.pending: dict[str, str] = {}
        self.lock = threading.Lock()

    def _flush(self, image: str) -> None:
        line = self.pending.pop(image, None)
        if line:
            sys.stderr.write(line)

    def step(self, image: str, index: int, total: int, text: str) -> None:
        with self.lock:
            self.pending[image] = f"[{image}] step {index}/{total}: {text}\n"
            if not self.only_work:
                self._flush(image)

    def output(self, image: str, line: str) -> None:
        if self.verbose:
            with self.lock:
                self._flush(image)
                sys.stderr.write(f"[{image}]   {line}\n")

    def done(self, image: str, text: str, cached: bool, seconds: float) -> None:
        with self.lock:
            if cached and self.only_work:
                self.pending.pop(image, None)
                return
            self._flush(image)
            sys.stderr.write(f"[{image}]   {'cached' if cached else f'done in {seconds:.1f}s'}\n")


class RichReporter:
    """A live display: one row per step, the running step of each image building side by side
    with its latest output line."""

    def __init__(self) -> None:
        import threading

        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True)
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                 TextColumn("[dim]{task.fields[last]}"), console=self.console)
        self.tasks: dict[str, tuple[Any, str]] = {}
        self.lock = threading.Lock()

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def step(self, image: str, index: int, total: int, text: str) -> None:
        label = f"[bold cyan]{image}[/] [{index}/{total}] {text}"
        with self.lock:
            self.tasks[image] = (self.progress.add_task(label, total=None, last=""), label)

    def output(self, image: str, line: str) -> None:
        with self.lock:
            task = self.tasks.get(image)
            if task is not None:
                self.progress.update(task[0], last=line.strip()[:60])

    def done(self, image: str, text: str, cached: bool, seconds: float) -> None:
        with self.lock:
            task = self.tasks.get(image)
            if task is not None:
                self.progress.update(task[0], description=f"[green]✓[/] {task[1]}", total=1, completed=1,
                                     last="cached" if cached else "")


def reporter(mode: str = "auto", only_work: bool = False) -> Any:
    """only_work: say nothing about cached steps (for `run`, where a build is a side trip)."""
    if mode == "quiet":
        from envtool.image.build import SilentReporter

        return SilentReporter()
    if mode == "plain" or (mode == "auto" and (only_work or not sys.stderr.isatty())):
        return PlainReporter(verbose=mode == "plain", only_work=only_work)
    return RichReporter()
