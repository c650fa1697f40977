"""Example sheet of a genbench agreement report (ours): pairs where a metric agreed and disagreed with people.

Reads ``RUN/manifest.jsonl`` (written by `genbench import-agiqa3k`, with each image's human MOS) and
``RUN/agreement/per_pair.csv`` (`genbench agree RUN`). Draws ``--n`` pairs the metric got right and ``--n`` it
got wrong — drawn at random with ``--seed`` among pairs of one kind, so the sheet is not a hand-picked best
case — each image with its human MOS and the metric's score (its pick said), the people's choice framed in
green, and how many pairs of each kind there were (four of each is not a 50 % metric).

    python experiments/agiqa3k/pair_sheet.py runs/agiqa3k/pairs --metric attiqa-agiqa3k-crossfit \
        --out runs/agiqa3k/pairs.png
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from attiqa.io.atomic import atomic_path
from genbench.manifest import read_records, resolve

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def pick(rows: list[dict], metric: str, n: int, seed: int, same_generator: bool | None) -> tuple[list, list]:
    """(n agreed, n disagreed) per-pair rows of ``metric`` (credit 1 / 0), at random."""
    rng = random.Random(seed)
    credit = f"{metric}_credit"
    rows = [r for r in rows if r.get(credit) not in ("", None)]
    if same_generator is not None:
        rows = [r for r in rows if r["same_generator"] == same_generator]
    good = [r for r in rows if float(r[credit]) == 1.0]
    bad = [r for r in rows if float(r[credit]) == 0.0]
    return rng.sample(good, min(n, len(good))), rng.sample(bad, min(n, len(bad)))


def shown_scores(a: float, b: float) -> tuple[str, str]:
    """The two scores of a pair with as many decimals (2 to 6) as tell them apart: at 2 a pair the metric
    got right or wrong by 0.004 read as a tie ("0.56" and "0.56")."""
    for d in range(2, 7):
        sa, sb = f"{a:.{d}f}", f"{b:.{d}f}"
        if sa != sb:
            break
    return sa, sb


def kind_of(r: dict, metric: str) -> str:
    """ "agreed" / "disagreed" with people, or "scored equal" — a model tie counted wrong is not a choice
    of the other image."""
    if r.get(f"{metric}_pick") == "tie":
        return "scored equal"
    return "agreed" if float(r[f"{metric}_credit"]) == 1.0 else "disagreed"


def votes_source(run: Path) -> str | None:
    """The preferences `genbench agree` measured against when they are not the import's MOS (``--prefs
    FILE``, or the run's ``votes.sqlite`` once anyone voted): their file name, whose votes the green frame
    then shows — not the higher MOS printed under the images. None for ``RUN/prefs.csv``."""
    try:
        settings = json.loads((run / "agreement" / "agreement.json").read_text(encoding="utf-8"))["settings"]
        prefs = str(settings["prefs"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a report of an older version: it was the import's MOS
    if os.path.abspath(prefs) == os.path.abspath(run / "prefs.csv"):
        return None
    return Path(prefs).name


def sheet_figure(
    run: Path,
    pairs: list[dict],
    metric: str,
    counts: str,
    thumb: int = 200,
    votes: str | None = None,
    same_generator: bool = False,
) -> Figure:
    """The sheet: each pair's two images with their human MOS and the metric's score (the metric's pick
    said), the people's choice framed in green; ``counts`` says how many pairs of each kind there were,
    so 4 agreed + 4 disagreed is not read as a 50 % metric. ``votes``: the preferences file the report
    measured against when not the MOS (:func:`votes_source`) — the frame is its voters' choice, said in the
    title, with each image's votes under it; ``same_generator``: only pairs of one generator were drawn."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # every box placed in inches: the pair's title band, its two images, their two caption lines — no text
    # can run into another (tight_layout gave a square image its cell's whole height, and a pair's title
    # ran into the captions of the pair above)
    cols, edge, gap, title_h, caption_h, top_h, margin = 2, 2.0, 0.3, 0.24, 0.42, 0.55, 0.15
    rows = (len(pairs) + cols - 1) // cols
    cell_w, row_h = 2 * edge + gap + 2 * margin, title_h + edge + caption_h
    width, height = cols * cell_w, top_h + rows * row_h + margin
    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)

    def place(k: int, side_i: int) -> tuple[float, float, float, float]:
        left = (k % cols) * cell_w + margin + side_i * (edge + gap)
        bottom = height - top_h - (k // cols) * row_h - title_h - edge
        return left / width, bottom / height, edge / width, edge / height

    for k, r in enumerate(pairs):
        kind = kind_of(r, metric)
        shown = shown_scores(float(r[f"{metric}_a"]), float(r[f"{metric}_b"]))
        for side_i, side in enumerate(("a", "b")):
            ax = fig.add_axes(place(k, side_i))
            img = Image.open(resolve(run, r[f"image_{side}"])).convert("RGB")
            img.thumbnail((thumb, thumb))
            ax.imshow(img)
            ax.set_xticks([])
            ax.set_yticks([])
            human_pick = r["human"] == side
            for spine in ax.spines.values():
                spine.set_edgecolor("#2ca02c" if human_pick else "#bbbbbb")
                spine.set_linewidth(4 if human_pick else 1)
            picked = " (metric's pick)" if r.get(f"{metric}_pick") == side else ""
            human = float(r[f"mos_{side}"])
            counted = f"  votes {r[f'votes_{side}']}" if votes else ""
            said = f"{r[f'generator_{side}']}{picked}\nMOS {human:.2f}{counted}  metric {shown[side_i]}"
            ax.set_xlabel(said, fontsize=7)
            if side_i == 0:  # the title spans the pair's two images: ~74 characters at 7 pt
                prompt = r["prompt"] if len(r["prompt"]) <= 64 else r["prompt"][:63] + "…"
                colour = {"agreed": "#2ca02c", "disagreed": "#d62728"}.get(kind, "#555555")
                ax.set_title(f"{kind}: “{prompt}”", fontsize=7, loc="left", color=colour)
    kind = "same prompt, same generator" if same_generator else "same prompt"
    frame = f"the image the votes in {votes} preferred" if votes else "the image people rated higher (MOS)"
    fig.suptitle(
        f"AGIQA-3k pairs ({kind}): {metric} vs people — green frame = {frame}\n" + counts,
        fontsize=9,
        y=1 - 0.08 / height,
        va="top",
    )
    return fig


def draw(fig: Figure, out: Path) -> Path:
    """Write the sheet ``fig`` to ``out`` (atomically)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    return out


def counts_line(rows: list[dict], metric: str, n_good: int, n_bad: int, seed: int) -> str:
    """``"4 of the 2722 pairs it agreed on, 4 of the 1938 it did not (58.4 % of 4660 counted), at random
    (seed 0)"``, from per_pair.csv's credits."""
    credits = [float(r[f"{metric}_credit"]) for r in rows if r.get(f"{metric}_credit") not in ("", None)]
    good = sum(c == 1.0 for c in credits)
    bad = sum(c == 0.0 for c in credits)
    acc = 100 * sum(credits) / len(credits) if credits else float("nan")
    return (
        f"{n_good} of the {good} pairs it agreed on, {n_bad} of the {bad} it did not "
        f"(accuracy {acc:.1f} % of {len(credits)} pairs), drawn at random (seed {seed})"
    )


def read_rows(run: Path, metric: str) -> list[dict]:
    """per_pair.csv's rows joined with their manifest records; one line (SystemExit) for a run this sheet
    cannot be drawn from: no agree report, a metric the report lacks (a typo drew an empty sheet), pairs
    without human MOS (a generated run: a KeyError traceback)."""
    per_pair = run / "agreement" / "per_pair.csv"
    if not per_pair.is_file():
        raise SystemExit(f"error: {per_pair}: not found — run `genbench agree {run}` first")
    manifest = {r["pair_id"]: r for r in read_records(run)}
    with open(per_pair, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = [{**manifest.get(r["pair_id"], {}), **r} for r in reader]
        fields = reader.fieldnames or []
    metrics = [f.removesuffix("_credit") for f in fields if f.endswith("_credit")]
    if metric not in metrics:
        raise SystemExit(f"error: --metric {metric}: not in {per_pair} (its metrics: {', '.join(metrics)})")
    if rows and not all("mos_a" in r and "mos_b" in r for r in rows):
        raise SystemExit(
            f"error: {run}: its pairs carry no human MOS — the sheet is drawn for a `genbench "
            "import-agiqa3k` run"
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--metric", required=True)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--same-generator", action="store_true", help="only pairs of one generator")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    rows = read_rows(a.run, a.metric)
    same = True if a.same_generator else None
    good, bad = pick(rows, a.metric, a.n, a.seed, same)
    if same:
        rows = [r for r in rows if r["same_generator"]]
    counts = counts_line(rows, a.metric, len(good), len(bad), a.seed)
    fig = sheet_figure(a.run, good + bad, a.metric, counts, 200, votes_source(a.run), bool(same))
    print(draw(fig, a.out))


if __name__ == "__main__":
    main()
