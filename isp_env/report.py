"""The comparison report: per-image CSV, summary JSON, a markdown table and a PNG grid of renders."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from attiqa.io.atomic import atomic_path, write_json_atomic, write_text_atomic

METHOD_LABELS = {
    "neutral": "neutral defaults",
    "rawpy": "rawpy.postprocess()",
    "cma_global": "global CMA-ES",
    "cma_per_image": "per-image CMA-ES",
    "agent": "RL agent",
}


def summarise(rows: list[dict[str, Any]], budgets: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    """Mean MOS per method over the test images, with the scorer calls each method used."""
    out = []
    for method in METHOD_LABELS:
        vals = [r["mos"] for r in rows if r["method"] == method]
        if not vals:
            continue
        b = budgets.get(method, {})
        out.append({"method": method, "label": METHOD_LABELS[method], "n_images": len(vals),
                    "mean_mos": float(np.mean(vals)), "std_mos": float(np.std(vals)),
                    "train_scorer_calls": int(b.get("train", 0)), "test_scorer_calls": int(b.get("test", 0))})
    return out


def markdown(summary: list[dict[str, Any]], scorer: str, preview: int) -> str:
    lines = [f"Mean MOS on the test images (scorer `{scorer}`, renders scored at long side {preview}).", "",
             "| method | images | mean MOS | std | scorer calls (training) | scorer calls (test images) |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for s in summary:
        lines.append(f"| {s['label']} | {s['n_images']} | {s['mean_mos']:.4f} | {s['std_mos']:.4f} | "
                     f"{s['train_scorer_calls']} | {s['test_scorer_calls']} |")
    return "\n".join(lines) + "\n"


def write_report(out: Path, rows: list[dict[str, Any]], budgets: dict[str, dict[str, int]],
                 meta: dict[str, Any], previews: dict[str, dict[str, np.ndarray]]) -> list[dict[str, Any]]:
    """Write ``results.csv``, ``summary.json``, ``report.md`` and ``grid.png`` into ``out``."""
    summary = summarise(rows, budgets)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["image", "method", "mos"])
    w.writeheader()
    for r in rows:
        w.writerow({"image": r["image"], "method": r["method"], "mos": f"{r['mos']:.6f}"})
    write_text_atomic(out / "results.csv", buf.getvalue())
    write_json_atomic(out / "summary.json", {**meta, "methods": summary})
    write_text_atomic(out / "report.md", "# isp-tune report\n\n" + markdown(summary, meta.get("scorer", "?"),
                                                                          meta.get("preview", 0)))
    if previews:
        grid_png(out / "grid.png", previews, rows)
    return summary


def grid_png(path: Path, previews: dict[str, dict[str, np.ndarray]], rows: list[dict[str, Any]],
             max_images: int = 6) -> None:
    """Rows: test images (up to ``max_images``); columns: methods; titles carry each render's MOS."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = list(previews)[:max_images]
    methods = [m for m in METHOD_LABELS if any(m in previews[i] for i in images)]
    mos = {(r["image"], r["method"]): r["mos"] for r in rows}
    fig, axes = plt.subplots(len(images), len(methods), figsize=(2.6 * len(methods), 2.2 * len(images)),
                             squeeze=False)
    for i, name in enumerate(images):
        for j, m in enumerate(methods):
            ax = axes[i][j]
            ax.axis("off")
            if m in previews[name]:
                ax.imshow(previews[name][m])
                ax.set_title(f"{METHOD_LABELS[m]}\nMOS {mos.get((name, m), float('nan')):.3f}", fontsize=7)
        axes[i][0].text(-0.05, 0.5, name, transform=axes[i][0].transAxes, rotation=90, va="center",
                        ha="right", fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
