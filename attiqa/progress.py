"""One progress-bar style for every long job: count, images/s, elapsed, remaining (rich)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

console = Console(stderr=True, soft_wrap=True)


def plain(text: object) -> str:
    """``text`` (a path, an error message) for a ``console.print`` string with markup: a file named
    ``[draft] x.jpg`` is shown as it is, not taken for a style tag (and a ``[/x]`` in a path does not
    raise rich's MarkupError)."""
    return escape(str(text))


class RateColumn(ProgressColumn):
    """Items per second, e.g. ``37.2 img/s``."""

    def __init__(self, unit: str = "img") -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} {self.unit}/s" if speed else f"– {self.unit}/s", style="cyan")


def make_progress(unit: str = "img", disable: bool = False) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(unit),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=disable,
        transient=False,
    )


@contextmanager
def progress_task(description: str, total: int, unit: str = "img", disable: bool = False) -> Iterator:
    """Yield ``advance(n)`` for a single-task progress bar.

    Not on a terminal (CI, ``nohup ... > log``), a live bar would print nothing until the end, so a
    plain line is logged instead every 10 % of the work or every 60 s, whichever comes first.
    """
    if not disable and not console.is_terminal:
        import time

        start = last = time.perf_counter()
        state = {"done": 0, "last_frac": 0.0, "last": last}

        def advance(n: int = 1) -> None:
            state["done"] += n
            now = time.perf_counter()
            frac = state["done"] / max(total, 1)
            if frac - state["last_frac"] >= 0.1 or now - state["last"] >= 60 or state["done"] >= total:
                rate = state["done"] / max(now - start, 1e-9)
                console.print(f"{description}: {state['done']}/{total} ({rate:.1f} {unit}/s)")
                state["last_frac"], state["last"] = frac, now

        yield advance
        return
    with make_progress(unit, disable) as prog:
        task = prog.add_task(description, total=total)
        yield lambda n=1: prog.advance(task, n)


def make_training_progress() -> Progress:
    """Progress for training loops: steps, loss and images/s fields (``loss``, ``ips``) set per update."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TextColumn("{task.fields[ips]:.1f} img/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
