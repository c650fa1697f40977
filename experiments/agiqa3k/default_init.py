"""An fp32 starting point from `attiqa-default`, for "does starting from the default model help?" (ours).

The shipped default model is stored in fp16; its backbone is the frozen ImageNet EfficientNet-Lite0 rounded to
fp16. Fine-tuning from it as is would key the feature cache on those rounded weights (a second, full feature
pass over the images). The default model's recipe never trains its backbone, so its exact weights are the
fp32 ImageNet ones: this writes the default model (attribute heads, feature standardisation, MOS MLP, ridge
head) with its backbone weights replaced by them; `finetune` attaches a fresh MOS MLP and refits the ridge.

    python experiments/agiqa3k/default_init.py runs/agiqa3k/attiqa-default-fp32.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path

from attiqa.models import create_backbone, load_model, save_model
from attiqa.scorers.zoo import resolve_weights


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    a = ap.parse_args()
    model, card = load_model(resolve_weights("attiqa-default"))
    imagenet = create_backbone(model.backbone.name).state_dict()
    state = model.backbone.state_dict()
    swapped = 0
    for k, v in imagenet.items():
        if k.startswith("body.norm."):
            continue  # the default model's feature standardisation (learnt statistics) stays
        diff = float((state[k].float() - v.float()).abs().max()) if v.is_floating_point() else 0.0
        if v.is_floating_point() and diff > 1e-2 * max(1.0, float(v.abs().max())):
            raise SystemExit(f"{k}: differs from ImageNet by {diff:.3g} — not an fp16 rounding, stopping")
        state[k] = v
        swapped += 1
    model.backbone.load_state_dict(state)
    note = "attiqa-default with its fp32 ImageNet backbone"
    save_model(model, a.out, {**card, "stage": "finetune", "note": note})
    print(f"{a.out}: {swapped} backbone tensors set to their fp32 ImageNet values")


if __name__ == "__main__":
    main()
