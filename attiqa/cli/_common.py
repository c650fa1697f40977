"""What every command line (``attiqa``, ``genbench``, ``isp-tune``) shares: the app runner (one red line
per error, exit codes for interruptions), the options several commands share (``--device``, ``--workers``,
``--batch-size``, ``--model``: one definition each), the consoles and score tables.

Subcommand modules import this module, never :mod:`attiqa.cli.app`.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import re
import shutil
import signal
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.cells import cell_len, set_cell_size
from rich.console import Console
from rich.table import Table
from rich.text import Text

from attiqa.allocator import tune_allocator
from attiqa.attributes import display_name
from attiqa.errors import AttiqaError, EveryProcessError, Said, did_you_mean
from attiqa.io.cores import MAX_WORKERS
from attiqa.launch import world_size_text
from attiqa.limits import SEED_MAX
from attiqa.progress import console, plain, plain_name, say_error, shown_name
from attiqa.scorers import DEFAULT_MODEL

if TYPE_CHECKING:
    from PIL import Image

T = TypeVar("T")

stdout = Console()  # tables go to stdout; progress and messages to stderr (``console``)

NARROW = 100
"""Below this many columns on stdout (a narrow terminal, a pipe, a log: 80) every command's ``--help`` is
click's plain layout (:func:`run_app`; above it, where rich's panel would squeeze it: :func:`plain_help`),
and tables are plain lines: rich's option panel cut long option names ("--keep-checkpoin…",
"--checkpoint-eve…") and squeezed their help into a column of 17."""

EXIT_ERROR = 2
EXIT_SIGINT = 130  # 128 + SIGINT, as a shell reports Ctrl-C
EXIT_SIGTERM = 143  # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so a command can keep its finished work (like Ctrl-C)."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


def interrupt_exit_code(exc: KeyboardInterrupt) -> int:
    return EXIT_SIGTERM if isinstance(exc, Terminated) else EXIT_SIGINT


class InterruptedExit(SystemExit):
    """A command's own end after Ctrl-C / SIGTERM, once it said what it kept: exit 130 / 143 and no other
    line (:func:`run_app` adds its bare "interrupted" only where no command handled the interruption).
    Raise it in the command's ``except KeyboardInterrupt`` (``from exc``) or after it."""

    def __init__(self, interruption: KeyboardInterrupt) -> None:
        super().__init__(interrupt_exit_code(interruption))


# Options shared by commands (the default stays in each signature: `device: DeviceOption = "auto"`).
DeviceOption = Annotated[str, typer.Option("--device", help="auto | cpu | cuda | cuda:N")]


def workers_option(what: str) -> Any:
    """The one ``--workers`` option, its help naming what the command's model does to the images (``what``):
    every command that takes it runs a model on images, none trains."""
    return typer.Option(
        "--workers",
        "-w",
        min=0,
        max=MAX_WORKERS,
        help=f"Processes decoding the images {what}; 0 decodes in this process, between model calls, on "
        "torch's threads (default: one per core the model leaves free).",
    )


WorkersOption = Annotated[int | None, workers_option("to score")]  # `attiqa score`, genbench's `score`
EvalWorkersOption = Annotated[int | None, workers_option("of the dataset to score")]
LabelWorkersOption = Annotated[int | None, workers_option("the teacher labels")]
PromptWorkersOption = Annotated[int | None, workers_option("CLIP encodes")]
BatchSizeOption = Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Images per model call.")]
ScoringBatchSizeOption = Annotated[  # commands that score through attiqa.scoring.score_batches
    int,
    typer.Option(
        "--batch-size",
        "-b",
        min=1,
        help="Images per model call, counted as images of five 320-px crops: a checkpoint whose card sets "
        "larger views gets proportionally fewer a call.",
    ),
]
CacheOption = Annotated[  # `eval` and `bench cross`: where is attiqa.evaluation.cache.cache_location
    bool,
    typer.Option(
        "--cache/--no-cache",
        help="Reuse scores of images a model already scored (another target or split, a rerun after a "
        "kill); kept in eval_scores.sqlite in $ATTIQA_CACHE (default ~/.cache/attiqa), which must be on a "
        "local disk (not NFS).",
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help=f"Checkpoint, named model or scorer (`attiqa models`); clipiqa:DIR. Default: {DEFAULT_MODEL} "
        "(bundled).",
    ),
]


def crops_overrides(model: str | None, crops: str | None, default: str | None = None) -> dict[str, str]:
    """``--crops`` as :func:`attiqa.scorers.load_scorer` takes it: ATTIQA checkpoints and named ATTIQA models
    only (paper §4.2 five-crop test; ``default``: the command's mode when none is given, else the scorer's).
    Given to another scorer it is refused (``score -m classical --crops center`` was taken without a word)."""
    from attiqa.scorers import is_attiqa_model

    if is_attiqa_model(model):
        chosen = crops or default
        return {"crops": chosen} if chosen else {}
    if crops is None:
        return {}
    raise AttiqaError(
        f"--crops applies to ATTIQA checkpoints only, not to scorer {model!r} (it takes no crop mode) — "
        "drop --crops"
    )


def seed_option(help_text: str) -> Any:
    """A command's ``--seed`` (default 0): a negative or too large seed is refused as a bad option value
    (numpy raised "expected non-negative integer" / "Seed must be between 0 and 2**32 - 1" as a traceback,
    after a command such as ``isp-tune`` had split its raws)."""
    return typer.Option(0, "--seed", min=0, max=SEED_MAX, help=help_text)


def learning_rate(value: float) -> float:
    """A ``--lr`` option's check (a config's ``lr`` is checked the same way when read): -1 or nan was
    torch's "Invalid learning rate" traceback once the model had loaded, 0 trained nothing."""
    if not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"{value} is not a learning rate — give a number > 0, e.g. 1e-3")
    return value


def device(spec: str) -> str:
    """A ``--device`` value as a torch device string (see :func:`attiqa.device.resolve_device`)."""
    from attiqa.device import resolve_device

    return str(resolve_device(spec))


def one_process() -> bool:
    """Not under torchrun: WORLD_SIZE unset or 1 (any other value, even one the process group refuses, is
    left to :func:`attiqa.sharding.sharded`). A command's checks then run before torch is imported."""
    return world_size_text() == "1"


def checked_first(check: Callable[[], T]) -> Callable[[], T]:
    """Run a command's input and output checks now, before torch is imported, when this is one process: a
    typo's one line came after the whole model stack was imported (measured: docs/default_model.md, speed
    notes, `benchmarks/cli_startup.py`). Under torchrun (WORLD_SIZE > 1, or a value the process group will
    refuse) the check is returned to run inside :func:`attiqa.sharding.alike_on_every_process`, so the job
    says it once. Call the result for the value."""
    if not one_process():
        return check
    value = check()
    return lambda: value


def run_app(typer_app: Callable[[], Any], synonyms: Mapping[str, str] | None = None) -> None:
    """Run a typer app: an :class:`AttiqaError` — or, as a last resort, an ``OSError`` (a path that cannot
    be written) — ends as one red line and exit code 2; Ctrl-C and SIGTERM end with 130 / 143 after the
    command kept what it finished. Tunes malloc for tensor work first (:mod:`attiqa.allocator`).
    ``synonyms``: the app's words for its commands (:func:`command_hint`)."""
    tune_allocator()
    if isinstance(typer_app, typer.Typer):
        typer_app = app_command(typer_app, width=stdout.width, synonyms=synonyms)
    previous: Any = None
    with contextlib.suppress(ValueError):  # not the main thread (e.g. a test runner): keep the default
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        _run_command(typer_app)
    finally:  # after the command there is nothing to keep: SIGTERM in the interpreter's shutdown (torchrun's
        # agent stopping the survivor of a lost rank) raised Terminated there, a traceback under the one line
        sys.stdout.flush()
        sys.stderr.flush()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run_command(typer_app: Callable[[], Any]) -> None:
    """:func:`run_app`'s command: its errors and interruptions as one line and an exit code."""
    try:
        typer_app()
    except Said:
        # said by the processes of a torchrun job that met it (attiqa.sharding.alike_on_every_process)
        sys.exit(EXIT_ERROR)
    except AttiqaError as exc:
        # said by rank 0 of a job; one process says it whatever RANK a launcher left in its shell
        if not isinstance(exc, EveryProcessError) or one_process() or os.environ.get("RANK", "0") == "0":
            say_error(str(exc))
        sys.exit(EXIT_ERROR)
    except OSError as exc:  # last resort (the commands check their inputs and outputs first): still one line
        where = f"{exc.filename}: " if exc.filename else ""
        say_error(
            f"{where}{exc.strerror or exc} — check the path (a file where a folder should be?), its "
            "permissions and the free disk space"
        )
        sys.exit(EXIT_ERROR)
    except InterruptedExit:
        raise  # the command said what it kept; "interrupted" here was a second, stray line
    except (KeyboardInterrupt, SystemExit) as exc:
        # typer turns an interruption the command did not handle into SystemExit(130), SIGTERM included;
        # the interruption is still on the exception chain, so both end here with its own code
        interruption = _interruption_behind(exc)
        if interruption is None:
            raise
        console.print("[yellow]interrupted")
        sys.exit(interrupt_exit_code(interruption))


def unwrapped(text: str) -> str:
    """``text`` (a docstring) with the line breaks inside each paragraph joined, lists and indented lines
    kept: typer 0.29's rich help keeps them, so help wrapped at the source's 110 columns broke mid-sentence
    at any other width ("…scored by the reward" / "model (MOS, …" at 100)."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(
        p
        if p.startswith("\b") or any(line.startswith((" ", "* ", "- ", "|")) for line in p.splitlines())
        else " ".join(p.splitlines())
        for p in paragraphs
    )


def version() -> str:
    """The installed attiqa's version (``--version`` of every command line: one distribution)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("attiqa")
    except PackageNotFoundError:  # a checkout on PYTHONPATH, never installed
        return "(not installed)"


def app_command(
    typer_app: typer.Typer, *, width: int | None = None, synonyms: Mapping[str, str] | None = None
) -> Any:
    """``typer_app``'s click command, built afresh as the console script runs it: every command's help
    :func:`unwrapped`, plain help wrapped without breaking names (:class:`WholeNamesFormatter`), a
    ``--version`` option on the root, usage errors in one line (:func:`usage_line`). On a terminal
    ``width`` columns wide, a command whose rich option panel would leave its descriptions too little room
    (:func:`plain_help`) gets click's plain layout, the help's rich markup rendered to text as rich would
    show it ("[bold]mos[/]" -> "mos"). ``typer_app`` is left as it was: the help was rewritten in place, so
    a second call in one process read it as markup twice (an escaped ``\\[`` lost its backslash).
    An unknown command of the root is answered by meaning (``synonyms``) too (:func:`command_hint`)."""
    root = typer.main.get_command(typer_app)
    laid_out: list[bool] = []

    class HelpContext(WholeNamesContext):
        def get_help(self) -> str:  # --help and no_args_is_help's screen both render through here
            if not laid_out:
                lay_out_help(root, width)
                laid_out.append(True)
            return str(super().get_help())

    # typer's main shows no_args_is_help's screen (a usage error) by the root's layout: measured now
    if width is not None and hasattr(root, "rich_markup_mode") and plain_help(root, width):
        root.rich_markup_mode = None
    todo = [root]
    while todo:
        cmd = todo.pop()
        cmd.context_class = HelpContext
        if hasattr(cmd, "commands"):
            hint_commands(cmd, synonyms if cmd is root else None)
        todo += getattr(cmd, "commands", {}).values()
    root.params.append(version_option(typer_app.info.name or Path(sys.argv[0]).stem))
    one_line_usage_errors(root)
    return root


def lay_out_help(root: Any, width: int | None) -> None:
    """:func:`app_command`'s help texts of ``root`` and every subcommand, laid out for a terminal ``width``
    columns wide: done when a help screen is first rendered, not at every start (measuring every option
    panel cost each command line's start ~8 ms it only needs for ``--help``; benchmarks/cli_startup.py)."""
    todo = [root]
    while todo:
        cmd = todo.pop()
        plain_layout = width is not None and plain_help(cmd, width)
        if cmd.help:
            cmd.help = (
                unwrapped(cmd.help) if not plain_layout else Text.from_markup(unwrapped(cmd.help)).plain
            )
        if plain_layout and hasattr(cmd, "rich_markup_mode"):  # typer's commands: plain help
            cmd.rich_markup_mode = None
        todo += getattr(cmd, "commands", {}).values()


MIN_HELP_ROOM = 40
"""Fewest columns rich's option panel may leave to the option descriptions: below it the names and types
took the width, a word or two a line, long words cut with "…" (docs/robustness.md, session 53)."""


def plain_help(cmd: Any, width: int) -> bool:
    """Whether ``cmd``'s ``--help`` on a terminal ``width`` columns wide is click's plain layout: always
    below :data:`NARROW`, and where rich's option panel — a column each for the option names, the short
    names, the ``--no-`` names and the types — would leave its descriptions fewer than
    :data:`MIN_HELP_ROOM` columns or less than their longest word (which rich cuts with "…")."""
    if width < NARROW:
        return True
    ctx = cmd.context_class(cmd)
    panels: dict[tuple[str, str], list[Any]] = {}  # typer's panels: arguments, options, rich_help_panel=
    for p in cmd.get_params(ctx):
        if not getattr(p, "hidden", False):
            panels.setdefault((p.param_type_name, getattr(p, "rich_help_panel", None) or ""), []).append(p)
    for params in panels.values():
        rows = [panel_cells(p, ctx) for p in params]
        columns = [max(cell_len(row[i]) for row in rows) for i in range(len(rows[0]))]
        words = [cell_len(w) for p in params for w in str(getattr(p, "help", None) or "").split()]
        required = any(p.required for p in params)
        room = width - 4 - sum(columns) - required - 2 * (len(columns) + required)  # 4: the panel's borders
        if room < max([MIN_HELP_ROOM, *words]):
            return True
    return False


def panel_cells(param: Any, ctx: Any) -> list[str]:
    """The cells left of ``param``'s description in typer's rich option panel: its long names, short
    names, ``--no-`` long and short names, and its type with the range ("<int range> [0<=x<=64]"; only
    their widths matter)."""
    if param.param_type_name == "argument":
        names = ["", f"{getattr(param, 'display_name_raw', param.name)}...", "", ""]
    else:
        names = [
            ",".join(o for o in opts if o.startswith("--") == long)
            for opts in (param.opts, param.secondary_opts)
            for long in (True, False)
        ]
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    kind = str(param.display_type_rich(ctx) or "") if hasattr(param, "display_type_rich") else ""
    if low is not None or high is not None:
        kind += f" [{'' if low is None else f'{low}<='}x{'' if high is None else f'<={high}'}]"
    return [*names, kind]


# click's UsageError, reached through a public name (typer >= 0.29 has its own copy of click)
UsageError: type[Exception] = typer.BadParameter.__mro__[1]


def usage_line(exc: Exception, root: Any, prog: str, args: Sequence[str]) -> str:
    """click's usage error ``exc`` of ``prog args`` (``root``: its click command) as one line naming the
    command, what is wrong and the fix: "attiqa score: no such option '--foo' — see 'attiqa score --help'"
    (was click's usage line, "Try '… --help' for help." and "Error: …", in a rich box on a terminal)."""
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None else command_path(root, prog, args)
    option = getattr(exc, "option_name", None)
    if option and hasattr(exc, "possibilities"):  # click's NoSuchOption
        hint = dash_name_hint(args)
        if hint:  # "-x.png: a name starting with '-' reads as an option — …"
            return f"{where}: {hint}"
        what = f"no such option {option!r}"
        if exc.possibilities:
            what += f" (did you mean {' or '.join(map(repr, sorted(exc.possibilities)))}?)"
    else:
        what = re.sub(r"\.? Did you mean (.+)\?$", r" (did you mean \1?)", str(exc.format_message()))  # type: ignore[attr-defined]
        what = (what[:1].lower() + what[1:] if what[1:2].islower() else what).removesuffix(".")
    if " — " in what:  # the message says its own fix (a command's BadParameter)
        return f"{where}: {what}"
    return f"{where}: {what} — see '{where} --help'"


def command_hint(name: str, commands: Iterable[str], synonyms: Mapping[str, str], prog: str) -> str:
    """The tail of "no such command NAME": the command ``name`` means (``synonyms``: a word -> the command
    it stands for, "" for ``prog`` itself with no command), else the commands or synonyms it is a
    misspelling of — " (did you mean 'vote'?)". typer's guess was by spelling alone: ``genbench serve`` was
    asked "Did you mean 'score'?", ``genbench rate`` got nothing, though both want ``vote``."""
    meant = {k.lower(): v for k, v in synonyms.items()}.get(name.lower())
    if meant is None:
        return did_you_mean(name, commands, n=3, aliases={k: v for k, v in synonyms.items() if v})
    if not meant:
        return f" (did you mean {prog!r} itself, without {name!r}?)"
    return f" (did you mean {meant!r}?)"


def hint_commands(group: Any, synonyms: Mapping[str, str] | None) -> None:
    """Makes ``group`` (a click group) answer an unknown command with :func:`command_hint` instead of
    typer's spelling-only guess."""
    resolve = group.resolve_command
    group.suggest_commands = False

    def resolve_command(ctx: Any, args: list[str]) -> Any:
        try:
            return resolve(ctx, args)
        except UsageError as exc:
            name = args[0] if args else ""
            if name and name not in group.commands and str(exc.message).startswith("No such command"):  # type: ignore[attr-defined]
                shown = [n for n, c in group.commands.items() if not getattr(c, "hidden", False)]
                hint = command_hint(name, shown, synonyms or {}, ctx.command_path)
                exc.message = f"No such command {name!r}{hint}"  # type: ignore[attr-defined]
            raise

    group.resolve_command = resolve_command


def command_path(root: Any, prog: str, args: Sequence[str]) -> str:
    """``prog`` and the subcommands ``args`` name (an error click raised without its context: "option
    '--device' requires an argument")."""
    path, cmd = [prog], root
    for arg in args:
        if arg == "--":
            break
        sub = getattr(cmd, "commands", {}).get(arg)
        if sub is not None:
            path.append(arg)
            cmd = sub
    return " ".join(path)


def one_line_usage_errors(root: Any) -> None:
    """Makes ``root`` (a click command) print each usage error as one red line on stderr (exit code 2, as
    click's): parsing the root's options and every subcommand's happens in its ``make_context`` and
    ``invoke``, so typer's own three-line (or boxed) report is never reached. The help that
    ``no_args_is_help`` shows through a usage error is left to typer."""
    make_context, invoke = root.make_context, root.invoke
    given: list[str] = []
    prog = [str(root.name)]

    @contextlib.contextmanager
    def one_line() -> Iterator[None]:
        try:
            yield
        except UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":
                raise
            say_error(usage_line(exc, root, prog[0], given))
            raise SystemExit(EXIT_ERROR) from exc

    def parse(info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        given[:] = args
        prog[0] = info_name or prog[0]
        with one_line():
            return make_context(info_name, args, parent, **extra)

    def run(ctx: Any) -> Any:
        with one_line():
            return invoke(ctx)

    root.make_context, root.invoke = parse, run


def version_option(name: str) -> Any:
    """``--version`` as a root option (eager: it answers before any other option or command), built by
    typer itself from a one-option app, so it is the same kind of option as the app's own."""

    def show(value: bool) -> None:
        if value:
            typer.echo(f"{name} {version()}")
            raise typer.Exit()

    probe = typer.Typer()

    @probe.callback(invoke_without_command=True)
    def _(
        version: bool = typer.Option(
            False, "--version", is_eager=True, callback=show, help="Show the version and exit."
        ),
    ) -> None:
        pass

    @probe.command()
    def _unused() -> None:
        pass

    option = typer.main.get_command(probe).params[0]
    option.expose_value = False  # not a parameter of the app's own callback (typer's wrapper checks them)
    return option


MIN_HELP_WIDTH = 20  # narrowest plain help text: click's was 50, wider than a 40-column terminal
HELP_GROUP = r"\S*\[[^\[\]\n]*\]\S*"  # an option's "[default: X]", kept on one line when it fits


def wrap_words(text: str, width: int, first: str = "", rest: str = "", keep: str = "") -> list[str]:
    """``text`` as lines at most ``width`` terminal cells wide (``first`` begins the first line, ``rest``
    the others; both counted), broken at spaces only: never inside a word or after its hyphen (click and
    textwrap ended a line with "stabilityai/stable-", a model id one copies). A word longer than a line: a
    path breaks after a "/" (each file name whole), any other word stays whole on a line of its own, begun
    left of a blank ``rest`` as far as it needs to end inside ``width`` (a terminal folded it at column 0).
    Widths in cells (:func:`rich.cells.cell_len`): a CJK character takes two. A run of spaces inside a line
    is kept, as textwrap kept it; ``keep``: a pattern of spans held as one word where they fit a line.
    The one wrapper of terminal text: help, ``attiqa datasets``, ``models``, ``distortions``."""
    room = width - cell_len(rest)
    out: list[str] = []
    line, used, empty = first, cell_len(first), True
    end = 0
    text = text.expandtabs()
    for m in re.finditer(f"{keep}|\\S+" if keep else r"\S+", text):
        gap, end = " " * (m.start() - end), m.end()
        span = m[0]
        pieces = re.split(r"(\s+)", span) if keep and cell_len(span) > room else [span]
        for i in range(0, len(pieces), 2):
            word = pieces[i]
            gap = gap if i == 0 else " " * len(pieces[i - 1])
            parts = [word] if cell_len(word) <= room else re.findall(r"[^/]*/|[^/]+", word)
            for k, part in enumerate(parts):
                sep = "" if empty or k else gap
                size = cell_len(part)
                if not empty and used + len(sep) + size > width:
                    out.append(line)
                    lead = rest if size <= room or rest.strip() else " " * max(width - size, 0)
                    line, used, sep = lead, cell_len(lead), ""
                line, used, empty = line + sep + part, used + len(sep) + size, False
    if not empty:
        out.append(line)
    return out


def filled_lines(text: str, width: int) -> list[str]:
    """``text``'s lines each wrapped to ``width`` (:func:`wrap_words`), an empty one kept."""
    return [part for line in text.split("\n") for part in wrap_words(line, width) or [""]]


PROSE_FLOOR = 24
"""The narrowest a column of longer text is drawn (:func:`whole_word_widths`): a table of prose a few words
wide is taller than the plain lines (docs/robustness.md, ``attiqa models``)."""


def whole_word_widths(headers: Sequence[str], rows: Sequence[Sequence[str]], width: int) -> list[int] | None:
    """The one rule of "does a rich table keep words whole": column widths for a boxed table (rich's,
    padding 1) of ``rows`` at ``width`` that keep every word whole — a path may break after a "/" — or None
    when the words do not fit. Rich's own layout narrows its widest columns first and folded file names
    ("AIGC_MOS_Zscore.xls x" at 120 columns) and scorer names ("attiqa-zer" / "oshot")."""
    cols = list(zip(headers, *rows, strict=True))
    shortest = [  # a header's words whole, a cell's path parts
        max([cell_len(w) for w in col[0].split()] + [cell_len(p) for c in col[1:] for p in wrap_words(c, 1)])
        for col in cols
    ]
    most = [max(cell_len(line) for cell in col for line in cell.split("\n")) for col in cols]
    room = width - 3 * len(cols) - 1  # a border and a space either side of each column
    if sum(most) <= room:
        return most
    if sum(shortest) > room:
        return None
    # as rich does, the widest columns give way first (the figures beside them keep their width), but none
    # below its longest word: the widest cap on a column's width that leaves the table inside ``room``
    cap = max(
        c
        for c in range(max(most) + 1)
        if sum(max(n, min(m, c)) for n, m in zip(shortest, most, strict=True)) <= room
    )
    widths = [max(n, min(m, cap)) for n, m in zip(shortest, most, strict=True)]
    if any(w < min(m, PROSE_FLOOR) for w, m in zip(widths, most, strict=True)):
        return None  # a prose column a few words wide makes a table taller than the plain lines (review)
    for i in sorted(range(len(cols)), key=lambda i: -most[i])[: room - sum(widths)]:  # the rest, widest first
        widths[i] += widths[i] < most[i]
    return widths


def table_widths(out: Console, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int] | None:
    """The one switch between a rich table and plain lines (``models``, ``datasets``, genbench's ``agree``,
    isp-tune's tables): the columns' widths (:func:`whole_word_widths`) when ``out`` is a terminal at least
    :data:`NARROW` columns wide that keeps every word whole, else None — print plain lines (piped, logged, a
    narrow terminal: rich folded names mid-word at 80 columns)."""
    if not out.is_terminal or out.width < NARROW:
        return None
    return whole_word_widths(headers, rows, out.width)


def whole_word_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    widths: Sequence[int],
    figures: bool = False,
    **table: Any,
) -> Table:
    """A rich table of ``rows`` (plain text, not markup) in columns of :func:`table_widths`'s ``widths``, each
    cell wrapped by :func:`wrap_words` first, so rich has no word to fold. ``figures``: the columns after the
    first (a row's name) hold figures, right-aligned; ``table``: :class:`rich.table.Table`'s own options."""
    out = Table(**table)
    for i, (header, w) in enumerate(zip(headers, widths, strict=True)):
        out.add_column(header, width=w, overflow="fold", justify="right" if figures and i else "left")
    for row in rows:
        out.add_row(
            *("\n".join(map(plain, filled_lines(cell, w))) for cell, w in zip(row, widths, strict=True))
        )
    return out


def help_lines(text: str, width: int, indent: str = "", keep: str = "") -> list[str]:
    """click's ``wrap_text(..., preserve_paragraphs=True)`` by :func:`wrap_words`: paragraphs apart by a
    blank line, each its first line's indent, one starting with a "\\b" line printed as it is."""
    paragraphs: list[tuple[str, bool, str]] = []
    lines: list[str] = []
    extra: str | None = None
    for line in [*text.expandtabs().splitlines(), ""]:
        if line:
            if extra is None:
                extra = " " * (len(line) - len(line.lstrip()))
                line = line.lstrip()
            lines.append(line)
        elif lines:
            raw = lines[0].strip() == "\b"
            paragraphs.append((indent + (extra or ""), raw, "\n".join(lines[1:]) if raw else " ".join(lines)))
            lines, extra = [], None
        else:
            extra = None
    out: list[str] = []
    for k, (pre, raw, body) in enumerate(paragraphs):
        out += [""] if k else []
        out += [pre + line for line in body.splitlines()] if raw else wrap_words(body, width, pre, pre, keep)
    return out


_HelpFormatter: Any = typer.Context.formatter_class  # click's (typer >= 0.29: its own copy of click's)


class WholeNamesFormatter(_HelpFormatter):  # type: ignore[misc]
    """click's plain help layout, wrapped by :func:`wrap_words`: click breaks after hyphens, so at 80
    columns genbench's "[default: stabilityai/stable-" ended a line and "diffusion-2-1]" began the next (a
    model id one copies), and "[default:" ended a line before its value. Fits a terminal under 52 columns
    too: click's text width never went below 50, so at 40 columns every line of 41–50 was broken by the
    terminal mid-word."""

    def __init__(self, indent_increment: int = 2, width: int | None = None, max_width: int | None = None):
        if width is None:
            columns = shutil.get_terminal_size().columns
            width = max(min(columns, max_width or 80) - 2, MIN_HELP_WIDTH)
        super().__init__(indent_increment, width, max_width)

    def write_dl(self, rows: Iterable[tuple[str, str]], col_max: int = 30, col_spacing: int = 2) -> None:
        """click's ``write_dl``, its descriptions wrapped by :func:`help_lines`."""
        rows = list(rows)
        if self.width < 50:  # under click's old floor: longer names on a line of their own, text below
            col_max = min(col_max, self.width // 3)
        first_col = min(max((cell_len(a) for a, _ in rows), default=0), col_max) + col_spacing
        width = max(self.width - first_col - 2, 10)  # click's own text width
        pad = " " * (first_col + self.current_indent)  # the descriptions' column
        for name, text in rows:
            self.write(" " * self.current_indent + name)
            if not text:
                self.write("\n")
                continue
            self.write(
                " " * (first_col - cell_len(name))
                if cell_len(name) <= first_col - col_spacing
                else "\n" + pad
            )
            lines = help_lines(text, len(pad) + width, pad, keep=HELP_GROUP) or [pad]
            self.write("".join([lines[0][len(pad) :] + "\n", *((line or pad) + "\n" for line in lines[1:])]))

    def write_text(self, text: str) -> None:
        indent = " " * self.current_indent
        self.write("\n".join(help_lines(text, self.width, indent)) + "\n")


class WholeNamesContext(typer.Context):
    formatter_class = WholeNamesFormatter


def dash_name_hint(args: Sequence[str]) -> str:
    """How to pass a file whose name starts with '-' (``-x.png``), when ``args`` hold one before ``--``:
    click reads it as an option and says only "No such option: -x". "" = no such name (a name that
    exists, or one with an extension such as ``.png``; ``-0.5`` and ``--opt=v`` are not names)."""
    for arg in args:
        if arg == "--":
            break
        if not arg.startswith("-") or arg == "-" or "=" in arg:
            continue
        if os.path.lexists(arg) or any(c.isalpha() for c in Path(arg).suffix):
            return (
                f"{arg}: a name starting with '-' reads as an option — if it is a file, pass it after "
                f"-- (e.g. `-- {arg}`) or as ./{arg}"
            )
    return ""


def _interruption_behind(exc: BaseException) -> KeyboardInterrupt | None:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, KeyboardInterrupt):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


SHORT_NAMES = {
    "sharpness": "sharp",
    "contrast": "contr.",
    "brightness": "bright",
    "colorfulness": "colour",
    "cleanliness": "clean",
}


def readable_images(
    paths: Sequence[Path],
    limit: int | None = None,
    prepare: Callable[[Image.Image], Image.Image] | None = None,
) -> tuple[list[Image.Image], list[str]]:
    """The images of ``paths`` (files, and folders searched) that can be read, with their names: each other
    one is skipped and listed with what is wrong and the fix (the rule of ``score`` and ``label``), none
    readable is one line. ``limit``: the first N readable ones (an unreadable file does not count);
    ``prepare``: applied to each as it is read, so a folder of big photos is not all held at full size."""
    from attiqa.io.images import discover_images, load_image

    photos: list[Image.Image] = []
    names: list[str] = []
    for f in discover_images(paths):
        if limit and len(photos) == limit:
            break
        try:
            img = load_image(f)
            photos.append(prepare(img) if prepare else img)
            names.append(str(f))
        except AttiqaError as exc:
            console.print(f"[yellow]skipped: {plain(exc)}")
    if not photos:
        raise AttiqaError(f"no readable photos in {', '.join(map(str, paths))} — pass image files or folders")
    return photos, names


def short_name(column: str) -> str:
    """At most 7 characters, for plain-text tables."""
    name = display_name(column)
    return SHORT_NAMES.get(name, name)[:7]


def _cell(v: float) -> str:
    if math.isnan(v):
        return "–"
    return f"{v:.3f}" if abs(v) < 1000 else f"{v:.4g}"


def print_scores(
    rows: Sequence[dict],
    columns: Sequence[str],
    n_total: int,
    stats: Any | None = None,
    limit: int = 40,
) -> None:
    """Per-image rows (the first ``limit``) and mean/min/max; columns empty everywhere are left out.

    ``stats`` (a :class:`attiqa.scoring.ColumnStats`) gives the summary over every row scored, also
    those not kept in memory. On a terminal: a rich table. Piped or logged: plain fixed-width lines that
    stay readable at 80 columns (short headers, 3 decimals), never cut numbers.
    """
    if stats is None:
        from attiqa.scoring import ColumnStats

        stats = ColumnStats(tuple(columns))
        stats.add(list(rows))
    cols = [c for c in columns if stats.counts.get(c)]
    summary = [
        ("mean", [stats.mean(c) for c in cols]),
        ("min", [stats.mins[c] for c in cols]),
        ("max", [stats.maxs[c] for c in cols]),
    ]
    title = f"{n_total} image(s) scored"
    shown = list(rows[:limit])
    more = n_total - len(shown)
    renamed = [c for c in cols if display_name(c) != c]
    note = "; ".join(f"{display_name(c)} = the file's {c} column (higher = cleaner)" for c in renamed)
    if stdout.is_terminal:
        table = Table(title=title, show_lines=False, caption=note or None)
        table.add_column("image", no_wrap=True, overflow="ellipsis", max_width=48)
        for c in cols:
            table.add_column(display_name(c)[:12], justify="right")
        for r in shown:
            table.add_row(plain_name(Path(r["image"]).name), *(_cell(r[c]) for c in cols))
        if more > 0:
            table.add_row(f"… {more} more", *[""] * len(cols))
        if n_total:
            table.add_section()
            for stat, vals in summary:
                table.add_row(f"[bold]{stat}", *(_cell(v) for v in vals))
        stdout.print(table)
        return
    shown_rows = [(shown_name(Path(r["image"]).name), [_cell(r[c]) for c in cols]) for r in shown]
    if more > 0:
        shown_rows.append((f"… {more} more", []))
    if n_total:
        shown_rows += [(stat, [_cell(float(v)) for v in vals]) for stat, vals in summary]
    text = plain_table(title, "image", [short_name(c) for c in cols], shown_rows, [note] if note else [])
    stdout.print(text, highlight=False, markup=False, soft_wrap=True)


def plain_table(
    title: str,
    key: str,
    headers: Sequence[str],
    rows: Sequence[tuple[str, Sequence[str]]],
    footer: Sequence[str] = (),
    long_names: str = "cut",
) -> str:
    """A table as plain fixed-width lines that stay readable at 80 columns (piped, logged, a narrow
    terminal), never cut figures: each row a name and its cells (7 characters, right-aligned; headers at most
    7: explain them in ``footer``). The names get what the cells leave (a 31-character name beside six
    cells); a longer one is cut with "…" (``long_names="cut"``) or, when names that differ only at the end
    must stay apart (``"own line"``: "policy …" and "policy …, checked"), printed whole on a line of its own
    with its cells on the next. A row without cells is its name alone (a "… 3 more" line)."""
    width = max(12, 80 - 8 * len(headers) - 1)

    def line(name: str, cells: Sequence[str]) -> str:
        figures = "".join(f" {c:>7}" for c in cells)
        if not cells or cell_len(name) <= width:  # by terminal cells: a CJK character takes two
            return set_cell_size(name, width) + figures if cells else name
        if long_names == "own line":
            return name + "\n" + " " * width + figures
        return set_cell_size(name, width - 1) + "…" + figures

    return "\n".join([title, line(key, headers), *(line(n, c) for n, c in rows), *footer])
