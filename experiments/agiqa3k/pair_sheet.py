"""Example sheet of a genbench agreement report (ours): pairs where a metric agreed and disagreed with people.

Reads ``RUN/manifest.jsonl`` (written by `genbench import-agiqa3k`, with each image's human MOS) and
``RUN/agreement/per_pair.csv`` (`genbench agree RUN`). Draws ``--n`` pairs the metric got right and ``--n`` it
got wrong — drawn at random with ``--seed`` among pairs of one kind, so the sheet is not a hand-picked best
case — each image with its human MOS and the metric's score, the people's choice framed in green.

    python experiments/agiqa3k/pair_sheet.py runs/agiqa3k/pairs --metric attiqa-agiqa3k-crossfit \
        --out runs/agiqa3k/pairs.png
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

from PIL import Image

from attiqa.io.atomic import atomic_path
from genbench.manifest import read_records, resolve


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


def draw(run: Path, pairs: list[tuple[str, dict]], metric: str, out: Path, thumb: int = 200) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols = 2
    rows = (len(pairs) + cols - 1) // cols
    fig = Figure(figsize=(cols * 4.6, rows * 2.55), dpi=110)
    FigureCanvasAgg(fig)
    for k, (kind, r) in enumerate(pairs):
        for side_i, side in enumerate(("a", "b")):
            ax = fig.add_subplot(rows, cols * 2, 2 * k + side_i + 1)
            img = Image.open(resolve(run, r[f"image_{side}"])).convert("RGB")
            img.thumbnail((thumb, thumb))
            ax.imshow(img)
            ax.set_xticks([])
            ax.set_yticks([])
            human_pick = r["human"] == side
            for spine in ax.spines.values():
                spine.set_edgecolor("#2ca02c" if human_pick else "#bbbbbb")
                spine.set_linewidth(4 if human_pick else 1)
            score = float(r[f"{metric}_{side}"])
            human = float(r[f"mos_{side}"])
            ax.set_xlabel(f"{r[f'generator_{side}']}\nhuman {human:.2f}  metric {score:.2f}", fontsize=7)
            if side_i == 0:
                prompt = r["prompt"] if len(r["prompt"]) <= 44 else r["prompt"][:43] + "…"
                colour = "#2ca02c" if kind == "agreed" else "#d62728"
                ax.set_title(f"{kind}: “{prompt}”", fontsize=7, loc="left", color=colour)
    fig.suptitle(f"AGIQA-3k pairs (same prompt): {metric} vs people — green frame = the image people rated "
                 "higher", fontsize=9)  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--metric", required=True)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--same-generator", action="store_true", help="only pairs of one generator")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    manifest = {r["pair_id"]: r for r in read_records(a.run)}
    with open(a.run / "agreement" / "per_pair.csv", newline="", encoding="utf-8") as fh:
        rows = [{**manifest[r["pair_id"]], **r} for r in csv.DictReader(fh)]
    good, bad = pick(rows, a.metric, a.n, a.seed, True if a.same_generator else None)
    pairs = [("agreed", r) for r in good] + [("disagreed", r) for r in bad]
    print(draw(a.run, pairs, a.metric, a.out))


if __name__ == "__main__":
    main()
