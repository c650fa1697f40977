"""How long a command line takes to answer what needs no model: ``attiqa --help``, ``attiqa models``,
``genbench --help``, ``isp-tune --help``, against the floor any typer CLI pays (``python -c "import typer,
rich"``), measured in the same run.

Each command is the console script's own call (``sys.exit(main())`` of its installed entry point, as
``[project.scripts]`` of pyproject.toml declares it) in a fresh child process with ``PYTHONPATH`` set to the
tree under test; the rounds alternate every command and every tree, so all see the same machine load.
Printed per command: wall time (best of rounds, and the median), its ratio to the floor (best / best, and the
median of per-round ratios), and the child's peak RSS (``ru_maxrss``). With ``--before PATH`` (another
checkout, e.g. the main branch) the same commands run from that tree too, and the "before / after" ratio of
the medians is printed.

    python benchmarks/cli_startup.py [--rounds 7] [--before ../main]

Figures in docs/default_model.md ("Implementation speed notes").
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import entry_points
from pathlib import Path

from attiqa.cli import run_app

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = (("attiqa", "--help"), ("attiqa", "models"), ("genbench", "--help"), ("isp-tune", "--help"))
FLOOR = "import typer, rich"


def entry_code(script: str) -> str:
    """What the installed console script runs, as ``python -c`` code (its entry point in the installed
    metadata; the module is then imported from the tree on the path)."""
    (ep,) = entry_points(group="console_scripts", name=script)
    return f"import sys; sys.argv[0] = {script!r}; from {ep.module} import {ep.attr}; sys.exit({ep.attr}())"


def run(code: str, args: tuple[str, ...], root: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of ``python -c CODE ARGS`` run in ``root`` (``-c`` puts the working folder
    first on the path) with ``root`` on ``PYTHONPATH`` too."""
    env = {**os.environ, "PYTHONPATH": str(root), "COLUMNS": "100"}
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: nothing can block the child
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", code, *args], cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=err
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status):
            err.seek(0)
            raise SystemExit(f"{code} {' '.join(args)} ({root}) failed:\n{err.read().decode()}")
    return seconds, usage.ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--before", type=Path, help="another checkout to compare with (e.g. the main branch)")
    args = ap.parse_args()

    trees = {"after": ROOT} if args.before is None else {"before": args.before.resolve(), "after": ROOT}
    runs = {("floor", "", "floor"): (FLOOR, (), ROOT)}
    for side, root in trees.items():
        for script, arg in COMMANDS:
            runs[(side, script, arg)] = (entry_code(script), (arg,), root)
    for code, a, root in runs.values():  # once untimed: bytecode caches written, files in the page cache
        run(code, a, root)
    secs: dict[tuple[str, str, str], list[float]] = {k: [] for k in runs}
    rss: dict[tuple[str, str, str], list[float]] = {k: [] for k in runs}
    for r in range(args.rounds):
        order = list(runs) if r % 2 == 0 else list(reversed(runs))
        for key in order:
            s, m = run(*runs[key])
            secs[key].append(s)
            rss[key].append(m)

    floor = secs[("floor", "", "floor")]
    print(f"python {sys.version.split()[0]}, {args.rounds} rounds; wall seconds best / median, peak RSS MiB")
    floor_rss = statistics.median(rss[("floor", "", "floor")])
    print(f"floor ({FLOOR}): {min(floor):.3f} / {statistics.median(floor):.3f} s, {floor_rss:.0f} MiB")
    print(
        f"{'command':<22} {'tree':<7} {'best s':>7} {'median':>7} {'x floor':>8} {'(median)':>9} {'MiB':>6}"
    )
    for script, arg in COMMANDS:
        for side in trees:
            key = (side, script, arg)
            t = secs[key]
            per_round = statistics.median(a / b for a, b in zip(t, floor, strict=True))
            print(
                f"{script + ' ' + arg:<22} {side:<7} {min(t):7.3f} {statistics.median(t):7.3f} "
                f"{min(t) / min(floor):8.2f} {per_round:9.2f} {statistics.median(rss[key]):5.0f}"
            )
        if "before" in trees:
            b, a = secs[("before", script, arg)], secs[("after", script, arg)]
            speed = statistics.median(x / y for x, y in zip(b, a, strict=True))
            print(f"{'':<22} before / after: {statistics.median(b) / statistics.median(a):.2f}x (medians), "
                  f"{speed:.2f}x (median per round)")  # fmt: skip


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
