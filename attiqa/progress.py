"""One progress-bar style for every long job: count, images/s, elapsed, remaining (rich)."""

from __future__ import annotations

import os
import time
import unicodedata
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Protocol

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


def say_error(text: str) -> None:
    """``error: TEXT`` on stderr, whole, the one line a failed command ends with. SIGTERM is held while it is
    written and ends the process at once after it (nothing is left to keep): torchrun's agent stopping a
    job whose other process had already ended raised the command's SIGTERM exception inside the write (a
    full pipe blocks it), and the line was lost."""
    import signal

    held: list[int] = []
    try:
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: held.append(signum))
    except ValueError:  # not the main thread: signals are not ours to set
        previous = None
    try:
        console.print(f"[bold red]error:[/] {plain(text)}", highlight=False, soft_wrap=True)
        console.file.flush()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            if held:  # the signal's own end, now that the line is out
                os.kill(os.getpid(), signal.SIGTERM)


def plain(text: object) -> str:
    """``text`` (a path, an error message) for a ``console.print`` string with markup: a file named
    ``[draft] x.jpg`` is shown as it is, not taken for a style tag (and a ``[/x]`` in a path does not
    raise rich's MarkupError)."""
    return escape(str(text))


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")  # reorder what follows them


def shown_name(name: object) -> str:
    """A file name or path for one printed line or table cell: control characters written as escapes
    (``a\\nb.png``, ``\\x1b``), a byte that is not UTF-8 as ``\\xe9`` — a newline would break the row or
    the list, an ESC would reach the terminal. Files and score tables keep the true name. For names only:
    a multi-line message keeps its newlines."""
    out = []
    for ch in str(name):
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif 0xDC80 <= ord(ch) <= 0xDCFF:  # a byte Python could not decode (surrogateescape)
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp"):
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``1 rater``, ``2 raters``: a printed count with its noun in the number the count takes ("1 raters"
    read as a slip); ``plural`` when it is not the noun + "s"."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def plain_name(name: object) -> str:
    """A path or file name for a ``console.print`` string with markup: :func:`shown_name`, then
    :func:`plain`."""
    return plain(shown_name(name))


def plain_failure(failure: object, path: object = None) -> str:
    """One line of a list of skipped files: ``PATH: reason`` (an error with a ``path``, or a text starting
    with ``path``) with the path through :func:`plain_name` and the reason through :func:`plain`."""
    text = str(failure)
    where = str(path if path is not None else getattr(failure, "path", ""))
    if where and text.startswith(where):
        return plain_name(where) + plain(text[len(where) :])
    return plain(text)


class Work:
    """What a progress display counts: the items ``kept`` (an earlier run's work, found finished: a resume)
    are in the count from the start but not in the rate, which is of the work done now as of the last
    advance — a kept item counted as done in no time read "629920.8 img/s"."""

    def __init__(self, kept: int = 0) -> None:
        self.start = self.last = time.perf_counter()
        self.done = self.kept = kept

    def add(self, n: int) -> None:
        self.done += n
        self.last = time.perf_counter()

    def rate(self) -> float | None:
        """Items a second done now (None before any)."""
        worked = self.done - self.kept
        return worked / max(self.last - self.start, 1e-9) if worked else None


class RateColumn(ProgressColumn):
    """Items per second of the task's :class:`Work` (its ``work`` field), e.g. ``37.2 img/s``."""

    def __init__(self, unit: str = "img") -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.fields["work"].rate()
        return Text(f"{speed:.1f} {self.unit}/s" if speed else f"– {self.unit}/s", style="cyan")


class RemainingColumn(ProgressColumn):
    """Time left at the rate of the task's :class:`Work` (rich's estimate counts kept items as done fast)."""

    max_refresh = 0.5  # rich's own: no jitter

    def render(self, task: Task) -> Text:
        speed = task.fields["work"].rate()
        if not task.finished and not speed:
            return Text("-:--:--", style="progress.remaining")
        left = 0 if task.finished else int(max((task.total or 0) - task.completed, 0) / speed)
        minutes, seconds = divmod(left, 60)
        hours, minutes = divmod(minutes, 60)
        return Text(f"{hours:d}:{minutes:02d}:{seconds:02d}", style="progress.remaining")


def make_progress(unit: str = "img", disable: bool = False) -> Progress:
    """A bar whose tasks carry a :class:`Work` as their ``work`` field (:func:`progress_task`)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(unit),
        TimeElapsedColumn(),
        RemainingColumn(),
        console=console,
        disable=disable,
        transient=False,
    )


class Advance(Protocol):
    """What :func:`progress_task` yields: ``n`` more items done now (what an earlier run kept is given at the
    start: ``progress_task(kept=…)``, ``LateBar.start(kept)``)."""

    def __call__(self, n: int = 1) -> None: ...


@contextmanager
def progress_task(
    description: str, total: int, unit: str = "img", disable: bool = False, kept: int = 0
) -> Iterator[Advance]:
    """Yield ``advance(n)`` for a single-task progress bar. ``kept``: the items an earlier run
    finished (a resume: a score file's rows, cache hits, labelled images, trained steps), in the count from
    the first frame and said as kept, not in the rate (:class:`Work`) — the one rule of every resumable
    command's bar (docs/robustness.md): advanced after the start, the first frame was 0/N or the first
    batch's; left out of the count, the bar of the rest hid them. A job that learns what it kept only once
    it has begun: :func:`progress_later`. Kept items are given at the start only: advanced as kept on the
    way (the old ``advance(n, kept=True)``), they jumped the bar after its first frame.

    Not on a terminal (CI, ``nohup ... > log``), a live bar would print nothing until the end, so a
    plain line is logged instead every 10 % of the work or every 60 s, whichever comes first, with the rate
    of the work done now and how many items were kept.
    """
    work = Work(kept)
    if not disable and not console.is_terminal:
        shown = {"frac": work.done / max(total, 1), "at": work.start}  # when a line was last printed

        def line() -> None:
            speed = work.rate()
            rate = f"{speed:.1f} {unit}/s" if speed else "none done now"
            note = f", {work.kept} kept from an earlier run" if work.kept else ""
            console.print(f"{description}: {work.done}/{total} ({rate}{note})")

        def advance(n: int = 1) -> None:
            if not n:  # nothing new: the last line stands (a second "3/3" at the end was the same line)
                return
            work.add(n)
            frac = work.done / max(total, 1)
            if frac - shown["frac"] >= 0.1 or work.last - shown["at"] >= 60 or work.done >= total:
                line()
                shown["frac"], shown["at"] = frac, work.last

        if kept:  # the log's first frame, as the live bar's
            line()
        yield advance
        return
    with make_progress(unit, disable) as prog:
        task = prog.add_task(description, total=total, completed=work.done, work=work)

        def advance_bar(n: int = 1) -> None:
            work.add(n)
            prog.advance(task, n)  # the bar's count; its rate and time left are the work's

        yield advance_bar


class LateBar:
    """A :func:`progress_task` bar drawn once the work knows what an earlier run kept: ``start(kept)`` (the
    job's first step, after its plan) draws it with those in the count from its first frame; each call is
    an ``advance``. A call before ``start`` starts it with nothing kept. From :func:`progress_later`."""

    def __init__(self, stack: ExitStack, description: str, total: int, unit: str, disable: bool) -> None:
        self.stack, self.description, self.total, self.unit, self.disable = (
            stack,
            description,
            total,
            unit,
            disable,
        )
        self.advance: Advance | None = None

    def start(self, kept: int = 0, total: int | None = None) -> None:
        """Draw the bar: ``kept`` items finished before, of ``total`` (else the one given at the start)."""
        if self.advance is None:
            total = self.total if total is None else total
            task = progress_task(self.description, total, self.unit, self.disable, kept)
            self.advance = self.stack.enter_context(task)

    def __call__(self, n: int = 1) -> None:
        self.start()
        assert self.advance is not None
        self.advance(n)


@contextmanager
def progress_later(
    description: str, total: int = 0, unit: str = "img", disable: bool = False
) -> Iterator[LateBar]:
    """:func:`progress_task` for a job that finds what an earlier run kept only once it has begun (a
    resumed loop reading its output): yields a :class:`LateBar`, closed at the end of the block."""
    with ExitStack() as stack:
        yield LateBar(stack, description, total, unit, disable)


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
