"""Feature families not tried before on AGIQA-3k (ours; issue 15, session 25): generator-artifact statistics,
a 2×2 spatial pyramid of Lite1's depthwise statistics and horizontal-flip test-time averaging.

Every frozen-Lite head measured in sessions 21-24 lands at 0.80-0.83 median SROCC. Two kinds of features the
ridge has never seen, each added to the families of the references below (each family scaled to the same
total variance, as views.py does) and also measured alone for reference:

(a) generator-artifact statistics, no backbone, on the whole 512-px image (``artifact_body``): the radially
    averaged log power spectrum (Hann window, 32 bins up to Nyquist) of luma and both chroma channels
    (BT.601 YCbCr), the share of spectral energy above 1/4, 1/2 and 3/4 of Nyquist per channel (log), the 8×8
    blockiness of luma (mean |step| across 8-px block edges over the mean |step| elsewhere, horizontal and
    vertical), and the five measures of the project's ``classical`` scorer (RMS contrast, brightness,
    Laplacian sharpness, Hasler-Süsstrunk colourfulness, Immerkær noise sigma; the last three as logs).
    112 values an image.
(b) one feature pass of Lite1 over the whole 512-px image and its left-right mirror (both in one forward
    batch, ``PyramidStats``): the mean / std over space of every depthwise tap and of the final features, for
    the whole map and for each of its 2×2 quadrants (the whole-map statistics are pooled exactly from the
    quadrants'). The mirror's quadrants are re-ordered to the original's positions before averaging.

Both are cached in ``$ATTIQA_CACHE/features`` through ``cached_features`` (keyed by the image file's SHA-256,
the extractor's weights and the view), so a second run costs seconds.

References (linear ridge on standardised sqrt statistics, penalty by leave-one-out: the product's rule):
R3 = Lite0 five crops + Lite1 whole + Lite2 whole (session 23's best linear ridge, 0.830 / 0.821) and
R1 = Lite1 five crops alone (the shipped recipe's ridge-only figure, 0.823 / 0.819). Tries (fixed here,
before any run; all linear, LOO penalty, the bench's 10 random + 10 prompt-grouped splits):

    a1  artifacts alone                                   (for reference)
    a2  R3 + artifacts                                    vs R3
    a3  R1 + artifacts                                    vs R1   (product-cost candidate)
    b0  Lite1 whole, original only, from the new pass     (must reproduce the cached Lite1 whole row)
    b1  Lite1 whole, flip-averaged                        (for reference, vs the Lite1 whole row)
    b2  Lite1 whole + its 4 quadrants, flip-averaged      (for reference)
    b3  R3 with Lite1 whole flip-averaged                 vs R3
    b4  R3 + Lite1 quadrants (flip-averaged), one family  vs R3
    b5  R3 + Lite1 quadrant spread (std of each statistic over the 4 quadrants, flip-averaged)   vs R3
    b6  R1 + Lite1 whole + quadrants, flip-averaged       vs R1   (product-cost candidate)
    b7  R1 + Lite1 whole + quadrants, original only       vs R1   (product-cost candidate, no flip)
    ab  R3 + artifacts + Lite1 quadrants (flip-avg), Lite1 whole flip-avg   vs R3

Rule, written before the runs: a try "helps" only if its median SROCC is above its reference's on BOTH split
kinds AND it beats the reference on at least 7 of the 10 splits of EACH kind (paired, same splits). Every try
is also paired against the other reference and reported. Nothing is shipped from this round unless a try helps
by that rule AND would cost < 2× the shipped model's scoring time (its five Lite1 crops); such a try is named
the next product candidate. Re-shipping this session needs, in addition, a gain of ≥ 0.01 in both medians.
Addendum, written after a1-a3 / b0-b7 / ab and before any of the runs below (a2 and a3 helped by the rule):
    c1-c4  R1 + one part of the artifact family: spectrum (96) / high-frequency shares (9) / blockiness (2) /
           classical measures (5): which part carries a3's gain (report only; no decision rests on them).
    g      held-out generator: 6 folds, each training on five generators' images and testing on the sixth's
           (SROCC within that generator), R1 vs a3 and R3 vs a2. The artifact statistics may recognise the
           generator (MOS differs much between generators); if the candidate loses to its reference on >= 4 of
           the 6 held-out generators, its gain is called generator-specific (it would not carry to a new
           generator) and the product-candidate note says so.
The cost check (``--timing``): seconds an image of each extractor against the shipped model's backbone work.

Twelve tries against two references: one of them passing 7/10 by chance is plausible — a pass is a candidate
to confirm, not a proof. Output: runs/agiqa3k/research/new_families.json.

    OMP_NUM_THREADS=1 nice -n 10 python experiments/agiqa3k/new_families.py ../shared/data/agiqa3k-dev \
        [--extract-only] [--only a1,a2,...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from attiqa.datasets import get_dataset
from attiqa.models.backbones import Backbone, tap_points
from attiqa.models.ridge_head import signed_power
from attiqa.models.transforms import CenterCropTest
from attiqa.teachers.classical import (
    hasler_susstrunk_colorfulness,
    immerkaer_noise_sigma,
    laplacian_sharpness,
    lightness,
    mean_brightness,
    rms_contrast,
)
from attiqa.training.data import MosDataset
from attiqa.training.feature_cache import cached_features
from genbench.agiqa3k import generator_of

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from multi_kernel import fam, lite_families, paired  # noqa: E402
from recipes import summarise  # noqa: E402
from second_backbone import lite  # noqa: E402
from views import WholeImage, research_setup, run, standardise  # noqa: E402

SIZE = 512
BINS = 32
HF_CUTS = (0.25, 0.5, 0.75)


class ArtifactStats(nn.Module):
    """(a): generator-artifact statistics of (N, 3, H, W) sRGB images in [0, 1] -> (N, 112)."""

    version = "v2"  # part of the cache key (the backbone name): bump when the measures change

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float().contiguous()
        r, g, b = x[:, 0], x[:, 1], x[:, 2]
        yy = 0.299 * r + 0.587 * g + 0.114 * b
        ycc = torch.stack(
            [yy, -0.168736 * r - 0.331264 * g + 0.5 * b, 0.5 * r - 0.418688 * g - 0.081312 * b], 1
        )
        n, _, h, w = ycc.shape
        win = torch.outer(torch.hann_window(h, periodic=False), torch.hann_window(w, periodic=False))
        z = (ycc - ycc.mean((2, 3), keepdim=True)) * win
        power = torch.fft.fft2(z).abs().square()  # (N, 3, H, W)
        fy = torch.fft.fftfreq(h).abs()[:, None] / 0.5
        fx = torch.fft.fftfreq(w).abs()[None, :] / 0.5
        rad = torch.sqrt(fy.square() + fx.square())  # 1 = Nyquist along an axis
        inside = (rad > 0) & (rad <= 1)
        idx = (rad[inside] * BINS).ceil().long().clamp(1, BINS) - 1
        p = power[:, :, inside]  # (N, 3, P)
        sums = torch.zeros(n, 3, BINS).index_add_(2, idx, p)
        counts = torch.zeros(BINS).index_add_(0, idx, torch.ones_like(idx, dtype=torch.float))
        spectrum = torch.log10(sums / counts + 1e-12).flatten(1)  # (N, 96)
        total = p.sum(2).clamp_min(1e-30)  # v2: a constant image (two in agiqa3k-dev) has no energy at all
        hf = [torch.log10(p[:, :, rad[inside] > c].sum(2) / total + 1e-12) for c in HF_CUTS]
        hf_t = torch.stack(hf, 2).flatten(1)  # (N, 9)
        y255 = 255.0 * yy
        dx, dy = (y255[:, :, 1:] - y255[:, :, :-1]).abs(), (y255[:, 1:] - y255[:, :-1]).abs()
        edge_x = (torch.arange(w - 1) % 8) == 7  # the step from column 8k+7 to 8k+8
        edge_y = (torch.arange(h - 1) % 8) == 7
        block = torch.stack(
            [
                dx[:, :, edge_x].mean((1, 2)) / (dx[:, :, ~edge_x].mean((1, 2)) + 1e-6),
                dy[:, edge_y].mean((1, 2)) / (dy[:, ~edge_y].mean((1, 2)) + 1e-6),
            ],
            1,
        )
        lum, rgb255 = lightness(x), 255.0 * x
        classical = torch.stack(
            [
                rms_contrast(lum),
                mean_brightness(lum),
                torch.log(laplacian_sharpness(lum) + 1e-6),
                torch.log(hasler_susstrunk_colorfulness(rgb255) + 1e-6),
                torch.log(immerkaer_noise_sigma(rgb255) + 1e-6),
            ],
            1,
        )
        return torch.cat([spectrum, hf_t, block, classical], 1)


class PyramidStats(nn.Module):
    """(b): for every depthwise tap and the final features of an EfficientNet, [whole-map mean, std] then
    [mean, std] of each 2×2 quadrant (TL, TR, BL, BR) -> (N, 5 * F), F = the depthwise statistics' width."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    @staticmethod
    def _quads(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(whole mean, whole std, quadrant means (N, 4, C), quadrant stds (N, 4, C)); unbiased stds."""
        n, c, h, w = y.shape
        h2, w2 = h // 2, w // 2
        t = y.float().permute(0, 2, 3, 1)[:, : 2 * h2, : 2 * w2].reshape(n, 2, h2, 2, w2, c)
        m = t.mean((2, 4), keepdim=True)
        ss = (t - m).square().sum((2, 4))  # (N, 2, 2, C)
        m = m.reshape(n, 4, c)
        ss = ss.reshape(n, 4, c)
        k = h2 * w2
        mean = m.mean(1)
        total = ss.sum(1) + k * (m - mean[:, None]).square().sum(1)
        return mean, (total / max(4 * k - 1, 1)).sqrt(), m, (ss / max(k - 1, 1)).sqrt()

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        net: nn.Module = self.net
        whole: list[torch.Tensor] = []
        quads: list[torch.Tensor] = []

        def keep(_m: nn.Module, _i: object, y: torch.Tensor) -> None:
            mean, std, qm, qs = self._quads(y)
            whole.extend((mean, std))
            quads.extend((qm, qs))

        handles = [t.register_forward_hook(keep) for t in tap_points(net, "depthwise")[0]]
        try:
            h = net.blocks(net.bn1(net.conv_stem(x)))  # type: ignore[operator]
        finally:
            for handle in handles:
                handle.remove()
        mean, _, qm, _ = self._quads(net.bn2(net.conv_head(h)))  # type: ignore[operator]
        # the same layout as the product's statistics: [mean, std per tap..., final mean]
        return torch.cat([torch.cat([*whole, mean], 1), torch.cat([*quads, qm], 2).flatten(1)], 1)


class WholeAndMirror(CenterCropTest):
    """The whole image and its left-right mirror as two views (2, 3, H, W)."""

    def __call__(self, img):  # type: ignore[override]
        t = super().__call__(img)
        return torch.stack([t, t.flip(-1)])


def _extract(body: nn.Module, name: str, tf, view: dict, csv: Path, mean, std, batch: int) -> torch.Tensor:
    bb = Backbone(name, body, 1, mean, std).eval()
    x, ok = cached_features(
        bb, MosDataset(csv, None, tf, on_error="skip"), view, batch_size=batch, progress=True
    )
    if not bool(ok.all()):
        raise SystemExit(f"{csv}: {int((~ok).sum())} images could not be read; check the files")
    return x


def artifact_features(csv: Path) -> torch.Tensor:
    """(N, 112) artifact statistics of the CSV's images at their native 512 px (cached)."""
    zero, one = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    view = {"kind": "whole", "crop": SIZE, "mean": list(zero), "std": list(one)}
    body = ArtifactStats()
    x = _extract(
        body, f"agiqa_artifacts_{body.version}", WholeImage(zero, one, None, SIZE), view, csv, zero, one, 8
    )
    return x[:, 0]


def pyramid_features(csv: Path) -> torch.Tensor:
    """(N, 2 views [original, mirror], 5 * F) Lite1 pyramid statistics of the whole 512-px image (cached)."""
    net = lite("lite1")
    view = {"kind": "whole+mirror", "crop": SIZE, "mean": list(net.mean), "std": list(net.std)}
    body = PyramidStats(net.body.net)
    return _extract(
        body,
        "efficientnet_lite1@depthwise_pyramid2x2",
        WholeAndMirror(net.mean, net.std, None, SIZE),
        view,
        csv,
        net.mean,
        net.std,
        1,
    )


class Fold(NamedTuple):
    """A split as ``views.run`` reads it."""

    name: str
    train: list[int]
    test: list[int]


MIRROR = [1, 0, 3, 2]  # quadrant TL, TR, BL, BR of the mirrored image = TR, TL, BR, BL of the original


def split_pyramid(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Standardised sqrt families from the cached pyramid (N, 2, 5F): whole / quadrants / spread, with and
    without the mirror."""
    f = x.shape[-1] // 5
    whole = signed_power(x[..., :f], 0.5)
    # quadrant-major: (4, F), each quadrant's statistics in the whole map's order (float32 to save memory)
    quad = signed_power(x[..., f:], 0.5).reshape(len(x), 2, 4, f)
    quad_flip = (quad[:, 0] + quad[:, 1, MIRROR]) / 2
    whole_flip = whole.mean(1)
    return {
        "whole": standardise(whole[:, 0]),
        "whole_flip": standardise(whole_flip),
        "quads": standardise(quad[:, 0].flatten(1)),
        "quads_flip": standardise(quad_flip.flatten(1)),
        "spread_flip": standardise(quad_flip.std(1)),
    }


@torch.no_grad()
def timing(root: Path, n: int, rounds: int = 3) -> dict[str, float]:
    """Seconds an image, on ``n`` decoded images (one thread, the fastest of ``rounds`` interleaved rounds):
    the shipped model's backbone work (Lite1 on five 320-px crops of the 500-px view, stage + depthwise taps)
    and each extra the tries would add at scoring time."""
    from attiqa.io.images import load_image
    from attiqa.models.backbones import create_backbone
    from attiqa.training.sources import five_crop_views

    paths = [it.image for it in get_dataset("agiqa3k", root).items[:n]]
    imgs = [load_image(p) for p in paths]
    bb = create_backbone("efficientnet_lite1_ms").eval()
    five = torch.stack([five_crop_views(bb, 500, 320)[0](im) for im in imgs])
    pair = torch.stack([WholeAndMirror(bb.mean, bb.std, None, SIZE)(im) for im in imgs])
    zero, one = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    plain = torch.stack([WholeImage(zero, one, None, SIZE)(im) for im in imgs])
    pyr = Backbone("pyr", PyramidStats(bb.body.net), 1, bb.mean, bb.std).eval()
    whole_dw = bb.tap_view("depthwise")
    jobs = {
        "shipped: lite1 five crops, stages + depthwise": lambda i: bb.forward_with_taps(five[i], "depthwise"),
        "lite1 whole 512, depthwise (plain statistics)": lambda i: whole_dw.forward_raw(pair[i, :1]),
        "lite1 whole 512, pyramid statistics": lambda i: pyr.forward_raw(pair[i, :1]),
        "lite1 whole 512 + mirror, pyramid statistics": lambda i: pyr.forward_raw(pair[i]),
        "artifact statistics": lambda i: ArtifactStats().raw(plain[i]),
    }
    best = {k: float("inf") for k in jobs}
    for _ in range(rounds):
        for k, job in jobs.items():
            t = time.perf_counter()
            for i in range(n):
                job(i)
            best[k] = min(best[k], (time.perf_counter() - t) / n)
    return best


def figure(results: dict, out: Path) -> None:
    """Per-split SROCC of each helping try against its reference (a point above the diagonal: the try wins
    that split), and the held-out-generator SROCC. Only numbers are drawn (no AGIQA-3k image)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = [(k, v["reference"]) for k, v in results.items() if v.get("helps") and k[:2] in ("a2", "a3")]
    fig, axes = plt.subplots(1, len(pairs) + 1, figsize=(4.2 * (len(pairs) + 1), 4.0))
    for ax, (cand, ref) in zip(axes, pairs, strict=False):
        for kind, mark in (("random", "o"), ("prompt", "^")):
            xs = [r["srocc"] for r in results[ref]["splits"][kind]]
            ys = [r["srocc"] for r in results[cand]["splits"][kind]]
            ax.scatter(xs, ys, marker=mark, label=f"{kind} splits", alpha=0.8)
        lo = min(ax.get_xlim()[0], ax.get_ylim()[0])
        hi = max(ax.get_xlim()[1], ax.get_ylim()[1])
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set(xlabel=f"{ref.split(':')[0]} SROCC", ylabel=f"{cand.split(':')[0]} SROCC", title=cand)
        ax.legend(fontsize=8)
    held = results.get("g: held-out generator")
    ax = axes[-1]
    if held:
        names = [r["split"] for r in held[next(iter(held))]]
        keys = [k for k in held if isinstance(held[k], list)]
        w = 0.8 / len(keys)
        for j, k in enumerate(keys):
            xs = [i + j * w for i in range(len(names))]
            ax.bar(xs, [r["srocc"] for r in held[k]], w, label=k.split(":")[0])
        ax.set_xticks([i + 0.4 - w / 2 for i in range(len(names))], names, rotation=30, fontsize=8)
        ax.set(
            ylabel="SROCC within the held-out generator",
            title="trained on the other five generators",
            ylim=(0, 1),
        )
        ax.legend(fontsize=8, ncol=4, loc="upper center")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--out", type=Path, default=Path("runs/agiqa3k/research"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--extract-only", choices=["artifacts", "pyramid"], default=None)
    ap.add_argument("--only", default="", help="comma-separated try ids (a1,a2,...)")
    ap.add_argument("--figure", type=Path, default=None, help="only draw the results' PNG to this path")
    ap.add_argument("--timing", type=int, default=0, help="only time the extractors on this many images")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.figure:
        figure(json.loads((a.out / "new_families.json").read_text()), a.figure)
        return
    if a.timing:
        t = timing(a.root, a.timing)
        ship = t[next(iter(t))]
        for k, v in t.items():
            print(f"{k:50s} {v:.3f} s/image  ({v / ship:.2f} of the shipped model's backbone work)")
        (a.out / "new_families_timing.json").write_text(json.dumps(t, indent=1))
        return
    prompts, y, sets, csv = research_setup(a.root, a.out)
    if a.extract_only == "artifacts":
        artifact_features(csv)
        return
    if a.extract_only == "pyramid":
        pyramid_features(csv)
        return
    only = set(filter(None, a.only.split(",")))
    crops0, crops1, whole1, whole2 = lite_families(csv)
    art = standardise(artifact_features(csv))
    pyr: dict[str, torch.Tensor] = {}

    def p(k: str) -> torch.Tensor:
        if not pyr:
            pyr.update(split_pyramid(pyramid_features(csv)))
        return pyr[k]

    target = a.out / "new_families.json"
    results = json.loads(target.read_text()) if target.is_file() else {}
    r3, r1, w1 = "R3: lite0 crops + lite1 + lite2 whole", "R1: lite1 crops", "W1: lite1 whole (cached)"
    tries = {
        r3: (lambda: fam(crops0, whole1, whole2), None),
        r1: (lambda: crops1, None),
        w1: (lambda: whole1, None),
        "a1: artifacts alone": (lambda: art, None),
        "a2: R3 + artifacts": (lambda: fam(crops0, whole1, whole2, art), r3),
        "a3: R1 + artifacts": (lambda: fam(crops1, art), r1),
        "b0: lite1 whole, original, new pass": (lambda: p("whole"), w1),
        "b1: lite1 whole, flip-averaged": (lambda: p("whole_flip"), w1),
        "b2: lite1 whole + quadrants, flip-averaged": (lambda: fam(p("whole_flip"), p("quads_flip")), w1),
        "b3: R3 with lite1 whole flip-averaged": (lambda: fam(crops0, p("whole_flip"), whole2), r3),
        "b4: R3 + lite1 quadrants (flip-avg)": (lambda: fam(crops0, whole1, whole2, p("quads_flip")), r3),
        "b5: R3 + lite1 quadrant spread (flip-avg)": (
            lambda: fam(crops0, whole1, whole2, p("spread_flip")),
            r3,
        ),
        "b6: R1 + lite1 whole + quadrants, flip-avg": (
            lambda: fam(crops1, p("whole_flip"), p("quads_flip")),
            r1,
        ),
        "b7: R1 + lite1 whole + quadrants, original": (lambda: fam(crops1, p("whole"), p("quads")), r1),
        "ab: R3 + artifacts + quadrants, whole flip-avg": (
            lambda: fam(crops0, p("whole_flip"), whole2, p("quads_flip"), art),
            r3,
        ),
    }
    parts = {
        "c1": (0, 96, "spectrum"),
        "c2": (96, 105, "high-frequency shares"),
        "c3": (105, 107, "blockiness"),
        "c4": (107, 112, "classical measures"),
    }
    for tid, (lo, hi, what) in parts.items():
        tries[f"{tid}: R1 + artifacts, {what} only"] = (lambda lo=lo, hi=hi: fam(crops1, art[:, lo:hi]), r1)
    for name, (build, ref) in tries.items():
        tid = name.split(":")[0]
        if only and tid not in only and name in results:  # a reference already measured, or not asked for
            continue
        per = run(build(), y, sets, "loo", prompts)
        s = summarise(per)
        row: dict = {"summary": s, "splits": per, "reference": ref}
        for rname in {ref, r3, r1} - {None, name}:
            if rname in results:
                row[f"paired vs {rname.split(':')[0]}"] = paired(per, results[rname]["splits"])
        if ref is not None and ref in results:
            pr, rs = row[f"paired vs {ref.split(':')[0]}"], results[ref]["summary"]
            row["helps"] = all(s[k]["srocc"] > rs[k]["srocc"] and pr[k][0] >= 7 for k in ("random", "prompt"))
        results[name] = row
        print(
            f"{name:50s} "
            + "  ".join(f"{k}: {v['srocc']:.4f} / {v['plcc']:.4f}" for k, v in s.items())
            + "  "
            + " ".join(f"{k}={v}" for k, v in row.items() if k.startswith(("paired", "helps"))),
            flush=True,
        )
        a.out.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(results, indent=1))
    if only and "g" not in only:
        return
    gens = [generator_of(it.image) for it in get_dataset("agiqa3k", a.root).items]
    folds = {
        "generator": [
            Fold(g, [i for i, x in enumerate(gens) if x != g], [i for i, x in enumerate(gens) if x == g])
            for g in sorted(set(gens))
        ]
    }
    held: dict = {}
    for name, build in {
        r1: tries[r1][0],
        r3: tries[r3][0],
        "a2": tries["a2: R3 + artifacts"][0],
        "a3": tries["a3: R1 + artifacts"][0],
    }.items():
        held[name] = run(build(), y, folds, "loo", prompts)["generator"]
    for cand, ref in (("a3", r1), ("a2", r3)):
        d = [c["srocc"] - b["srocc"] for c, b in zip(held[cand], held[ref], strict=True)]
        held[f"{cand} vs {ref.split(':')[0]}"] = {
            "wins": sum(x > 0 for x in d),
            "of": len(d),
            "differences": d,
        }
        print(
            f"held-out generator, {cand} vs {ref}: "
            + ", ".join(
                f"{c['split']} {b['srocc']:.3f}->{c['srocc']:.3f}"
                for c, b in zip(held[cand], held[ref], strict=True)
            ),
            flush=True,
        )
    results["g: held-out generator"] = held
    target.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
