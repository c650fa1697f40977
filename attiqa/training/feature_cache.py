"""Frozen-backbone features, computed once per image and view and kept on disk (ours).

Why: on a CPU, almost all of a training step is the backbone. With the backbone frozen, its features of a
fixed set of views (the five crops of §4.2's test view) can be computed once; heads and the MOS MLP
then train in seconds per epoch, the paper's 100 epochs included, and protocols with 10 splits become
affordable. This is the "feature cache" mode of ``pretrain.feature_cache`` / ``finetune.feature_cache``;
it differs from the paper, which trains the backbone end to end (see docs/method.md).

Entries are per image: a folder per (backbone weights, view) holds safetensors chunks of :data:`CHUNK`
images each, written atomically, whose metadata lists each row's key: the SHA-256 of the image file's bytes.
So a killed extraction resumes where it stopped, a changed photo or model is never served stale features,
the splits of a protocol (or another CSV over the same photos) reuse what is there, and a copied, moved or
re-extracted dataset (new paths, new mtimes, same bytes) keeps its cache. Images that fail to
decode are not cached; they come back with ``valid`` False and training skips them.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch.utils.data import Subset

from attiqa.io.atomic import atomic_path
from attiqa.io.batching import data_loader
from attiqa.io.cache_home import cache_dir
from attiqa.io.checkpoints import save_safetensors
from attiqa.io.hashes import record_digest
from attiqa.io.images import content_key
from attiqa.models.backbones import Backbone
from attiqa.models.fold import is_folded
from attiqa.progress import progress_task
from attiqa.training.data import ImageTableDataset, collate_skip_none

CHUNK = 256


def default_feature_cache_root() -> Path:
    """``$ATTIQA_CACHE/features`` (default ``~/.cache/attiqa/features``)."""
    return cache_dir() / "features"


def backbone_fingerprint(backbone: Backbone) -> str:
    """SHA-256 over the backbone's frozen tensors (weights and BN statistics, not the feature norm).

    A backbone whose BatchNorm is folded (a scorer's, :mod:`attiqa.models.fold`) is refused: its state dict
    is not its checkpoint's, and features of a cache are those of the network training runs."""
    if is_folded(backbone):
        raise ValueError(
            f"backbone {backbone.name!r} has its BatchNorm folded (a scorer's, inference only): feature "
            "caches hold the training network's features — build it with attiqa.models.load_model"
        )
    h = hashlib.sha256(backbone.name.encode())
    for name, t in sorted(backbone.state_dict().items()):
        if name.startswith("body.norm."):  # the feature standardisation is applied after the cache
            continue
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def image_key(p: Path) -> str | None:
    """The image's content key (:func:`attiqa.io.images.content_key`), None if the file cannot be read."""
    try:
        return content_key(p)
    except OSError:
        return None


def _read_index(folder: Path) -> dict[str, tuple[Path, int]]:
    """key -> (chunk file, row) over every finished chunk in ``folder``.

    Two processes extracting the same images at once both write a chunk (their values can differ in the
    last float bits: thread counts change the order of sums). The chunk written first wins, for every
    reader and every run, so "the same features" means the same bits."""
    index: dict[str, tuple[Path, int]] = {}
    chunks = [(f.stat().st_mtime_ns, f.name, f) for f in folder.glob("chunk-*.safetensors")]
    for _, _, f in sorted(chunks):
        with safe_open(str(f), framework="pt") as fh:
            keys = json.loads((fh.metadata() or {}).get("keys", "[]"))
        for row, k in enumerate(keys):
            index.setdefault(k, (f, row))
    return index


@torch.no_grad()
def cached_features(
    backbone: Backbone,
    dataset: ImageTableDataset,
    view: dict[str, Any],
    root: Path | None = None,
    batch_size: int = 32,
    workers: int = 0,
    progress: bool = True,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw features ``(N, K, F)`` of ``dataset``'s items and an ``(N,)`` bool mask of images that decoded.

    ``dataset`` (a :class:`~attiqa.training.data.PseudoLabelDataset` or ``MosDataset`` built with
    ``on_error="skip"``) yields ``(K, 3, c, c)`` views per image, e.g. from
    :class:`~attiqa.models.transforms.FiveCropTest`; ``view`` describes that transform (it is part of
    the cache key)."""
    view_id = record_digest(view, length=12)
    folder = (
        Path(root or default_feature_cache_root())
        / f"{backbone.name}-{backbone_fingerprint(backbone)[:16]}-{view_id}"
    )
    folder.mkdir(parents=True, exist_ok=True)
    keys = [image_key(Path(p)) for p in dataset.paths]
    index = _read_index(folder)
    todo = [i for i, k in enumerate(keys) if k is not None and k not in index]
    was_training = backbone.training
    backbone.eval().to(device)
    readable = sum(k is not None for k in keys)  # the cached ones in the bar from its first frame, as kept
    with progress_task(
        "backbone features (cache)", readable, disable=not progress or not todo, kept=readable - len(todo)
    ) as advance:
        for start in range(0, len(todo), CHUNK):
            rows = todo[start : start + CHUNK]
            loader = data_loader(
                Subset(dataset, rows),
                batch_size=batch_size,
                num_workers=workers,
                collate_fn=collate_skip_none,
            )
            out_keys: list[str] = []
            out: list[torch.Tensor] = []
            for batch in loader:
                if batch is not None:
                    x, _, idx = batch
                    b, k = x.shape[:2]
                    out.append(backbone.forward_raw(x.to(device).flatten(0, 1)).float().cpu().view(b, k, -1))
                    out_keys += [str(keys[int(i)]) for i in idx]
                    advance(b)
            advance(len(rows) - len(out_keys))
            if out:
                target = folder / f"chunk-{uuid.uuid4().hex}.safetensors"
                with atomic_path(target) as tmp:
                    meta = {"keys": json.dumps(out_keys), "view": json.dumps(view), "backbone": backbone.name}
                    save_safetensors({"features": torch.cat(out).contiguous()}, tmp, meta)
                for row, k in enumerate(out_keys):
                    index[k] = (target, row)
    backbone.train(was_training)
    found = [index.get(k) if k is not None else None for k in keys]
    valid = torch.tensor([f is not None for f in found], dtype=torch.bool)
    if not valid.any():
        raise ValueError("no image could be decoded for the feature cache")
    loaded: dict[Path, torch.Tensor] = {}
    for f in {f[0] for f in found if f is not None}:
        loaded[f] = load_file(str(f))["features"]
    shape = next(iter(loaded.values())).shape[1:]
    feats = torch.full((len(keys), *shape), float("nan"))
    for i, hit in enumerate(found):
        if hit is not None:
            feats[i] = loaded[hit[0]][hit[1]]
    return feats, valid
