"""Zero-shot CLIP scorers: CLIP-IQA, its attribute pairs, and TeMu-IQA's layer-wise [cls] features.

All of them score an image ``x`` against antonym prompt pairs ``(t_pos, t_neg)``:
``p = softmax(scale * [cos(f(x), E_T(t_pos)), cos(f(x), E_T(t_neg))])[0]`` — the positive share, in [0, 1].

- ``clipiqa`` (Wang et al., "Exploring CLIP for Assessing the Look and Feel of Images", AAAI 2023):
  the pair "Good photo." / "Bad photo.", ``f = E_I`` (CLIP's image embedding), ``scale`` = the model's own
  ``logit_scale.exp()`` (100 for the OpenAI weights), as CLIP's zero-shot classifier. Default backbone
  ``RN50/openai`` (the original's). **Input size**: the original removes the positional embedding of the
  ResNet's attention pool so the image is seen at its native resolution; we do the same for ResNet CLIPs
  (``resolution="native"``, one image per batch since sizes differ). Backbones whose positional
  embedding can't be dropped (ViT) get open_clip's eval preprocess: shorter edge resized to the model's
  input size (224 for the OpenAI models), centre crop (``resolution="resize"``).
- ``clipiqa-attributes``: the same, with the overall "Good/Bad photo." column plus CLIP-IQA's five
  attribute pairs (sharp/blurry, high/low contrast, bright/dark, colorful/dull, clean/noisy). Our column
  names follow :data:`attiqa.attributes.ATTRIBUTES`, where noisiness is "higher = cleaner", so its
  positive prompt is "Clean photo.".
- ``temu-multilayer`` (TeMu-IQA supplement §13, Fig. 9, Tables 11–13): option (c), the [cls] token of
  every transformer layer of a CLIP ViT, each passed through the final layer norm (``ln_post``) and the
  projection, averaged over layers (we average the projected vectors before the cosine), then the
  CLIP-IQA antonym prompting. ``temu-layer`` is option (b): the [cls] token of one chosen layer
  (1-based; the last layer equals CLIP-IQA's option (a)). Default backbone ``ViT-L-14/openai``
  (Table 11's). ViT only, 224 resize (the positional embedding is needed by every layer).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms import functional as TF

from attiqa.errors import ModelLoadError
from attiqa.interface import Scorer
from attiqa.scorer_info import ScorerInfo
from attiqa.teachers.clip import clip_identity, load_open_clip, parse_clip_spec

Pair = tuple[str, str, str]  # (column, positive prompt, negative prompt)

CLIPIQA_QUALITY: tuple[Pair, ...] = (("score", "Good photo.", "Bad photo."),)
"""CLIP-IQA's quality pair (Wang et al. 2023, §3)."""

CLIPIQA_ATTRIBUTES: tuple[Pair, ...] = (
    ("sharpness", "Sharp photo.", "Blurry photo."),
    ("contrast", "High contrast photo.", "Low contrast photo."),
    ("brightness", "Bright photo.", "Dark photo."),
    ("colorfulness", "Colorful photo.", "Dull photo."),
    ("noisiness", "Clean photo.", "Noisy photo."),
)
"""CLIP-IQA's attribute pairs for the five ATTIQA attributes (positive first; noisiness: clean = higher)."""

PAIR_SETS: dict[str, tuple[Pair, ...]] = {
    "quality": CLIPIQA_QUALITY,
    "quality+attributes": CLIPIQA_QUALITY + CLIPIQA_ATTRIBUTES,
}
"""Prompt-pair sets by the name the zoo table uses."""


def _attnpool_without_pos(pool: Any, x: torch.Tensor) -> torch.Tensor:
    """open_clip ``AttentionPool2d`` without the positional embedding (any H×W), as CLIP-IQA does."""
    x = x.flatten(2).permute(2, 0, 1)  # (HW, N, C)
    x = torch.cat([x.mean(dim=0, keepdim=True), x], dim=0)
    out, _ = F.multi_head_attention_forward(
        query=x[:1],
        key=x,
        value=x,
        embed_dim_to_check=x.shape[-1],
        num_heads=pool.num_heads,
        q_proj_weight=pool.q_proj.weight,
        k_proj_weight=pool.k_proj.weight,
        v_proj_weight=pool.v_proj.weight,
        in_proj_weight=None,
        in_proj_bias=torch.cat([pool.q_proj.bias, pool.k_proj.bias, pool.v_proj.bias]),
        bias_k=None,
        bias_v=None,
        add_zero_attn=False,
        dropout_p=0.0,
        out_proj_weight=pool.c_proj.weight,
        out_proj_bias=pool.c_proj.bias,
        use_separate_proj_weight=True,
        training=False,
        need_weights=False,
    )
    return out[0]


def resnet_native_features(visual: Any, x: torch.Tensor) -> torch.Tensor:
    """Image embedding of an open_clip ``ModifiedResNet`` at any input size (no positional embedding)."""
    x = visual.stem(x.to(visual.conv1.weight.dtype))
    x = visual.layer4(visual.layer3(visual.layer2(visual.layer1(x))))
    return _attnpool_without_pos(visual.attnpool, x)


def vit_layer_features(visual: Any, x: torch.Tensor) -> torch.Tensor:
    """TeMu-IQA §13: the [cls] token after every transformer block, through ``ln_post`` and the
    projection. Returns (L, N, D) for L layers."""
    blocks = getattr(getattr(visual, "transformer", None), "resblocks", None)
    if blocks is None or getattr(visual, "attn_pool", None) is not None or visual.pool_type != "tok":
        raise ModelLoadError(
            "layer-wise [cls] features need a CLIP ViT with [cls]-token pooling (e.g. ViT-L-14/openai); "
            f"got {type(visual).__name__}"
        )
    batch_first = getattr(visual.transformer, "batch_first", True)
    tokens: list[torch.Tensor] = []

    def grab(
        _module: torch.nn.Module, _inputs: tuple[Any, ...], output: torch.Tensor | tuple[torch.Tensor, ...]
    ) -> None:
        out = output[0] if isinstance(output, tuple) else output
        tokens.append(out[:, 0] if batch_first else out[0])

    handles = [b.register_forward_hook(grab) for b in blocks]
    try:
        visual(x)
    finally:
        for h in handles:
            h.remove()
    cls = visual.ln_post(torch.stack(tokens))  # LayerNorm is per token: ln(x)[cls] == ln(x[cls])
    return cls @ visual.proj if visual.proj is not None else cls


class ClipAntonymScorer(Scorer):
    """Antonym-pair prompting on CLIP image features (see the module docstring for each scorer).

    ``layers``: None = the image embedding (option (a)); "all" = TeMu option (c); an int = option (b),
    1-based layer index. ``resolution``: "auto" (native for ResNet CLIPs, else resize), "native", "resize".
    """

    def __init__(
        self,
        spec: str,
        device: str | torch.device = "cpu",
        *,
        info: ScorerInfo,
        pairs: str | Sequence[Pair] = "quality",
        layers: str | int | None = None,
        resolution: str = "auto",
        scale: float | None = None,
        cache_dir: str | Path | None = None,
        model_flag: str | None = None,
    ) -> None:
        super().__init__(device)
        # what --model takes before the CLIP spec, for the hints of a bad or missing one (temu-layer: N:)
        model_flag = model_flag or f"{info.name}:"
        if resolution not in ("auto", "native", "resize"):
            raise ValueError("resolution must be auto, native or resize")
        if isinstance(pairs, str):
            if pairs not in PAIR_SETS:
                raise ValueError(f"pairs must be one of {sorted(PAIR_SETS)}, got {pairs!r}")
            pairs = PAIR_SETS[pairs]
        self.pairs = tuple(pairs)
        self.columns = tuple(p[0] for p in self.pairs)
        parsed = parse_clip_spec(spec, model_flag)
        self.model: Any
        self.model, self.preprocess, tokenizer, weights = load_open_clip(
            parsed, self.device, cache_dir, flag=f"-m {model_flag}"
        )
        self.model.eval()
        visual: Any = self.model.visual
        is_resnet = hasattr(visual, "attnpool")
        if resolution == "native" and not is_resnet:
            raise ModelLoadError(
                f"{spec}: native resolution needs a ResNet CLIP (e.g. RN50/openai); use resolution='resize'"
            )
        self.native = layers is None and is_resnet and resolution != "resize"
        self.num_layers = len(getattr(getattr(visual, "transformer", None), "resblocks", []))
        if layers is not None and layers != "all":
            layer = int(layers)
            if not 1 <= layer <= self.num_layers:
                raise ModelLoadError(f"layer {layer} out of range: {spec} has layers 1..{self.num_layers}")
            layers = layer
        self.layers: str | int | None = layers
        self.scale = float(scale) if scale is not None else float(self.model.logit_scale.exp().item())
        cfg = visual.preprocess_cfg
        self._mean, self._std = list(cfg["mean"]), list(cfg["std"])
        size = visual.image_size
        size = min(size) if isinstance(size, (tuple, list)) else size
        # native resolution: image sizes differ, so one image per batch and no reduced-scale decoding
        self._info = dataclasses.replace(
            info, max_batch=1 if self.native else None, min_shorter=None if self.native else int(size)
        )
        with torch.no_grad():
            texts = [t for _, pos, neg in self.pairs for t in (pos, neg)]
            feats = self.model.encode_text(tokenizer(texts).to(self.device)).float()
        self.text_features = F.normalize(feats, dim=-1).view(len(self.pairs), 2, -1)
        self._meta = {"spec": spec, "weights": weights, **clip_identity(parsed, self.model, weights)}

    @property
    def info(self) -> ScorerInfo:
        return self._info

    def transform(self, img: Image.Image) -> torch.Tensor:
        img = img.convert("RGB") if img.mode != "RGB" else img
        if self.native:
            return TF.normalize(TF.to_tensor(img), self._mean, self._std)
        return self.preprocess(img)

    @torch.no_grad()
    def image_features(self, batch: torch.Tensor) -> torch.Tensor:
        """Unnormalised image features (N, D) for the chosen option."""
        x = batch.to(self.device)
        visual = self.model.visual
        if self.layers is None:
            return resnet_native_features(visual, x) if self.native else self.model.encode_image(x)
        per_layer = vit_layer_features(visual, x)
        return per_layer.mean(dim=0) if self.layers == "all" else per_layer[int(self.layers) - 1]

    @torch.no_grad()
    def score_tensors(self, batch: torch.Tensor) -> torch.Tensor:
        img = F.normalize(self.image_features(batch).float(), dim=-1)
        cos = torch.einsum("nd,pkd->npk", img, self.text_features)
        return torch.softmax(self.scale * cos, dim=-1)[..., 0]

    def metadata(self) -> dict[str, Any]:
        return {
            "name": self._info.name,
            "kind": self._info.kind,
            **self._meta,
            "scale": self.scale,
            "layers": "embedding" if self.layers is None else self.layers,
            "resolution": "native" if self.native else "resize",
            "prompts": {c: [p, n] for c, p, n in self.pairs},
        }


def temu_layer(
    spec: str = "", device: str | torch.device = "cpu", *, info: ScorerInfo, default_spec: str, **kw: Any
) -> ClipAntonymScorer:
    """TeMu option (b). ``spec`` is ``N`` or ``N:CLIP_SPEC`` (the CLI form after ``temu-layer:``)."""
    head, _, clip_spec = str(spec).partition(":")
    if not head.strip().isdigit():
        raise ModelLoadError("temu-layer needs a layer: -m temu-layer:N or temu-layer:N:CLIP_SPEC")
    flag = f"{info.name}:{head.strip()}:"  # the hints' form: -m temu-layer:N:CLIP_SPEC, not temu-layer:SPEC
    return ClipAntonymScorer(
        clip_spec or default_spec,
        device,
        info=info,
        layers=int(head),
        resolution="resize",
        model_flag=flag,
        **kw,
    )
