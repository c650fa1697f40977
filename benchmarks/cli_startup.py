"""How long a command line takes to answer what needs no model: ``attiqa --help``, ``attiqa models``,
``genbench --help``, ``isp-tune --help``, against the floor any typer CLI pays (``python -c "import typer,
rich"``) and a bare interpreter (``python -c pass``), measured in the same run; how long ``attiqa score
ONE_IMAGE`` (the shipped default model, a generated 640x480 photo-like image) takes against ``python -c
"import torch"``, the floor of any command that runs a model; and how long a user's mistake takes to be
told (``ERRORS``: a missing file, a bad --out, a missing config or run folder, a config value, bench's
protocol and split, label's images and prompts file, isp-tune's raws, genbench's metric names; each must
exit 2), as a ratio to its own command line's ``--help`` in the same round. With ``--agree RUN`` (a genbench
run folder already scored, e.g. an ``import-agiqa3k`` of agiqa3k-dev scored by ``classical`` and
``attiqa-agiqa3k``), ``genbench agree RUN`` too (its report into the scratch folder), which reads score files
only, against both floors. With ``--rescore RUN`` (a genbench run every metric of ``RUN/scores`` scored
whole, e.g. the same import scored by ``classical`` and ``attiqa-default``), ``genbench score RUN -m
THOSE_METRICS`` too — a rerun with nothing left to score — each tree on its own copy of the run (a rerun
rewrites the metrics' records; the first, untimed run of each tree leaves them as that tree writes them).
``--only``: those two commands alone (with the floors), not the command lines and mistakes above.

Each command is the console script's own call (``sys.exit(main())`` of its installed entry point, as
``[project.scripts]`` of pyproject.toml declares it) in a fresh child process with ``PYTHONPATH`` set to
the tree under test; the rounds alternate every command and every tree, so all see the same machine load.
Printed per command: wall time (best of rounds, and the median), its ratio to each of its floors (best /
best, and the median of per-round ratios), and the child's peak RSS (``ru_maxrss``). With ``--before PATH``
(another checkout, e.g. the main branch) the same commands run from that tree too, and the "before / after"
ratio of the medians is printed.

    python benchmarks/cli_startup.py [--rounds 7] [--before ../main] [--agree RUN] [--rescore RUN] [--only]

Figures in docs/default_model.md ("Implementation speed notes").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import entry_points
from pathlib import Path

from attiqa.cli import run_app

ROOT = Path(__file__).resolve().parents[1]
# the floors: what any command pays before its own code (a bare interpreter, typer's, torch's import)
FLOORS = {
    "python -c pass": "pass",
    "import typer, rich": "import typer, rich",
    "import torch": "import torch",
}
TYPER = ("import typer, rich",)
# (script, its arguments, the floors it is compared with); {tmp}: the scratch folder of scratch()
COMMANDS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("attiqa", ("--help",), ("import typer, rich", "python -c pass")),
    ("attiqa", ("models",), TYPER),
    ("genbench", ("--help",), TYPER),
    ("isp-tune", ("--help",), TYPER),
    ("attiqa", ("score", "{tmp}/one.jpg"), ("import torch",)),
)
# bad input, told before any model loads ({tmp}: a scratch folder holding photos/a.png and mos.csv)
ERRORS = (
    ("attiqa", ("score", "{tmp}/missing.jpg")),
    ("attiqa", ("score", "{tmp}/photos/a.png", "-o", "{tmp}/scores.txt")),
    ("attiqa", ("eval", "folder", "--root", "{tmp}/photos", "--split", "bogus", "-m", "classical")),
    ("attiqa", ("train", "--config", "{tmp}/missing.yaml")),
    ("attiqa", ("train", "--config", "{tmp}/epochs0.yaml")),
    ("attiqa", ("bench", "singel", "-d", "folder={tmp}/photos", "-o", "{tmp}/bench")),
    ("attiqa", ("label", "{tmp}/missing.jpg", "-o", "{tmp}/labels.parquet")),
    ("attiqa", ("label", "{tmp}/photos", "-t", "clip", "--prompts", "{tmp}/no.json", "-o", "{tmp}/l.pq")),
    ("genbench", ("score", "{tmp}/no_run")),
    ("genbench", ("agree", "{tmp}/no_run")),
    ("isp-tune", ("--raw-dir", "{tmp}/no_raws", "--out", "{tmp}/isp")),
    ("isp-tune", ("--raw-dir", "{tmp}/photos", "--out", "{tmp}/isp", "--batch-size", "999999")),
    ("isp-tune", ("--raw-dir", "{tmp}/photos", "--out", "{tmp}/isp")),  # no raw in it (session 56)
    ("attiqa", ("bench", "single", "-d", "folder={tmp}/photos", "-o", "{tmp}/bench")),  # 1 image: no split
    ("genbench", ("score", "{tmp}/no_run", "-m", "")),
)


def entry_code(script: str) -> str:
    """What the installed console script runs, as ``python -c`` code (its entry point in the installed
    metadata; the module is then imported from the tree on the path)."""
    (ep,) = entry_points(group="console_scripts", name=script)
    return f"import sys; sys.argv[0] = {script!r}; from {ep.module} import {ep.attr}; sys.exit({ep.attr}())"


def run(code: str, args: tuple[str, ...], root: Path, expect: int = 0) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of ``python -c CODE ARGS`` run in ``root`` (``-c`` puts the working folder
    first on the path) with ``root`` on ``PYTHONPATH`` too; it must exit ``expect``."""
    env = {**os.environ, "PYTHONPATH": str(root), "COLUMNS": "100"}
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: nothing can block the child
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", code, *args], cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=err
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) != expect:
            err.seek(0)
            raise SystemExit(f"{code} {' '.join(args)} ({root}) failed:\n{err.read().decode()}")
    return seconds, usage.ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--before", type=Path, help="another checkout to compare with (e.g. the main branch)")
    ap.add_argument("--agree", type=Path, help="a scored genbench run: time `genbench agree RUN` too")
    ap.add_argument("--rescore", type=Path, help="a genbench run scored whole: time `genbench score` again")
    ap.add_argument("--only", action="store_true", help="time --agree / --rescore alone (and the floors)")
    args = ap.parse_args()
    cases = () if args.only else COMMANDS
    if args.agree is not None:
        agree = ("agree", str(args.agree.resolve()), "-o", "{tmp}/agreement")
        cases = (*cases, ("genbench", agree, ("import typer, rich", "import torch")))
    if args.rescore is not None:
        rescore = ("score", "{tmp}/rescore-{tree}", "-m", ",".join(scored_metrics(args.rescore)))
        cases = (*cases, ("genbench", rescore, ("import typer, rich", "import torch")))

    trees = {"after": ROOT} if args.before is None else {"before": args.before.resolve(), "after": ROOT}
    with tempfile.TemporaryDirectory() as tmp:
        scratch(Path(tmp))
        for side in trees if args.rescore is not None else ():
            shutil.copytree(args.rescore, Path(tmp) / f"rescore-{side}")
        commands = [
            (
                s,
                tuple(a.format(tmp=tmp, tree="{tree}") for a in argv),
                " ".join(argv).replace("{tmp}/", ""),
                f,
            )
            for s, argv, f in cases
        ]
        told = () if args.only else ERRORS
        errors = [(script, tuple(a.format(tmp=tmp) for a in argv), " ".join(argv)) for script, argv in told]
        rounds(args.rounds, trees, commands, errors)


def scored_metrics(run: Path) -> list[str]:
    """The metrics a genbench run was scored by, as `genbench score -m` was given them (their records)."""
    records = sorted((run / "scores").glob("*.json"))
    if not records:
        raise SystemExit(f"{run}/scores: no metric scored this run — `genbench score {run} -m ...` first")
    names = []
    for p in records:  # a damaged record was a traceback (JSONDecodeError, KeyError): one line naming it
        try:
            record, why = json.loads(p.read_text(encoding="utf-8")), "no metric name in it"
        except (OSError, ValueError) as exc:
            record, why = None, f"unreadable: {exc}"
        name = record.get("metric") if isinstance(record, dict) else None
        if not isinstance(name, str) or not name:
            raise SystemExit(
                f"{p}: not a whole genbench scores record ({why}) — `genbench score {run} -m METRIC` (the "
                f"scorer of {p.stem}.csv) writes it again; then time the rerun"
            )
        names.append(name)
    return names


def scratch(tmp: Path) -> None:
    """The files :data:`ERRORS` point at: a photo and its score file, a run config with a bad value; and the
    image ``attiqa score`` scores: gradients and noise, a photo's size (PIL only: numpy in this process
    would be counted in every child's peak RSS, the fork's)."""
    from PIL import Image

    size = (640, 480)
    across = Image.linear_gradient("L").rotate(90).resize(size)
    Image.merge("RGB", (across, Image.linear_gradient("L").resize(size), Image.effect_noise(size, 40))).save(
        tmp / "one.jpg", quality=90
    )
    (tmp / "photos").mkdir()
    Image.new("RGB", (32, 24), (120, 80, 40)).save(tmp / "photos" / "a.png")
    (tmp / "photos" / "mos.csv").write_text("image,mos\na.png,1\n")
    (tmp / "epochs0.yaml").write_text("finetune:\n  epochs: 0\n")


def rounds(
    n: int,
    trees: dict[str, Path],
    commands: list[tuple[str, tuple[str, ...], str, tuple[str, ...]]],
    errors: list[tuple[str, tuple[str, ...], str]],
) -> None:
    """Every floor and every command of every tree ``n`` times, the order reversed every other round; then
    the tables."""
    runs = {("floor", "", name): (code, (), ROOT, 0) for name, code in FLOORS.items()}
    for side, root in trees.items():
        for script, argv, label, _ in commands:  # {tree}: this tree's own copy (--rescore)
            runs[(side, script, label)] = (
                entry_code(script),
                tuple(a.replace("{tree}", side) for a in argv),
                root,
                0,
            )
        for script, argv, label in errors:
            runs[(side, script, label)] = (entry_code(script), argv, root, 2)
    for code, a, root, expect in runs.values():  # once untimed: bytecode caches, files in the page cache
        run(code, a, root, expect)
    secs: dict[tuple[str, str, str], list[float]] = {k: [] for k in runs}
    rss: dict[tuple[str, str, str], list[float]] = {k: [] for k in runs}
    for r in range(n):
        order = list(runs) if r % 2 == 0 else list(reversed(runs))
        for key in order:
            s, m = run(*runs[key])
            secs[key].append(s)
            rss[key].append(m)

    print(f"python {sys.version.split()[0]}, {n} rounds; wall seconds best / median, peak RSS MiB")
    for name in FLOORS:
        t, mib = secs[("floor", "", name)], statistics.median(rss[("floor", "", name)])
        print(f"floor {name}: {min(t):.3f} / {statistics.median(t):.3f} s, {mib:.0f} MiB")
    head = f"{'command':<22} {'tree':<7} {'best s':>7} {'median':>7} {'MiB':>6}"
    print(f"{head}  x floor: best / best (median per round)")
    for script, _, label, floors in commands:
        for side in trees:
            key = (side, script, label)
            t = secs[key]
            ratios = []
            for name in floors:
                floor = secs[("floor", "", name)]
                per_round = statistics.median(a / b for a, b in zip(t, floor, strict=True))
                ratios.append(f"{min(t) / min(floor):.2f}x {name} ({per_round:.2f}x)")
            print(
                f"{script + ' ' + label:<22} {side:<7} {min(t):7.3f} {statistics.median(t):7.3f} "
                f"{statistics.median(rss[key]):6.0f}  {'; '.join(ratios)}"
            )
        if "before" in trees:
            b, a = secs[("before", script, label)], secs[("after", script, label)]
            speed = statistics.median(x / y for x, y in zip(b, a, strict=True))
            print(f"{'':<22} before / after: {statistics.median(b) / statistics.median(a):.2f}x (medians), "
                  f"{speed:.2f}x (median per round)")  # fmt: skip
    if not errors:
        return
    print("\nbad input (exit 2): wall seconds median, and x its command line's --help (median per round)")
    for script, _, label in errors:
        print(f"{script} {label}")
        for side in trees:
            t, helps = secs[(side, script, label)], secs[(side, script, "--help")]
            ratio = statistics.median(a / b for a, b in zip(t, helps, strict=True))
            print(f"  {side:<7} {statistics.median(t):7.3f} s  {ratio:6.2f}x --help")
        if "before" in trees:
            b, a = secs[("before", script, label)], secs[("after", script, label)]
            print(f"  before / after: {statistics.median(x / y for x, y in zip(b, a, strict=True)):.2f}x")


if __name__ == "__main__":
    run_app(main)  # an AttiqaError or a missing file: one line, exit 2
