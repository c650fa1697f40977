"""The one rule of "a cache entry answers only for its inputs" (`attiqa.io.hashes.record_digest`): eval's
score cache, the feature cache and isp-tune's caches key their entries by it. They hashed the same way in
three places before; the keys they wrote are the keys they read now, so caches on disk keep resuming."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np


def earlier_key(record: object, arrays: list[np.ndarray], length: int, default: bool = True) -> str:
    """A key as the caches computed it before the rule was one (each in its own module)."""
    text = json.dumps(record, sort_keys=True, default=str) if default else json.dumps(record, sort_keys=True)
    h = hashlib.sha256(text.encode())
    for a in arrays:
        b = np.ascontiguousarray(a, dtype=np.float64)
        h.update(repr(b.shape).encode() + b.tobytes())
    return h.hexdigest()[:length]


def test_isp_tunes_and_evals_cache_keys_are_the_ones_on_disk() -> None:
    from attiqa.evaluation.cache import score_cache_key
    from attiqa.scorers import load_scorer
    from isp_env.teacher import inputs_digest

    record = {"raws": ["a.dng", "b.dng"], "scale": 0.25, "scorer": "classical", "root": Path("/raws")}
    arrays = [np.arange(6, dtype=np.float32).reshape(2, 3), np.array([0.5, -1.0])]
    assert inputs_digest(arrays, record) == earlier_key(record, arrays, 16)
    assert inputs_digest([], {}) != inputs_digest([np.zeros(1)], {})  # the arrays are in the key
    key, identity = score_cache_key(load_scorer("classical"), {"crops": 5})
    assert key == earlier_key(identity, [], 32)
    assert key != score_cache_key(load_scorer("classical"), {"crops": 1})[0]


def test_the_feature_caches_folder_is_named_as_before(tmp_path: Path, photos) -> None:
    from helpers import write_mos_set

    from attiqa.models import create_backbone
    from attiqa.models.transforms import FiveCropTest
    from attiqa.training.data import MosDataset
    from attiqa.training.feature_cache import backbone_fingerprint, cached_features

    view = {"kind": "five_crop", "resize_shorter": 48, "crop": 40}
    bb = create_backbone("tiny", pretrained=False).eval()
    csv_path = write_mos_set(tmp_path / "data", dict(list(photos.items())[:1]), split_column=True)
    ds = MosDataset(csv_path, None, FiveCropTest(bb.mean, bb.std, 48, 40), on_error="skip")
    cached_features(bb, ds, view, tmp_path / "cache", batch_size=4, progress=False)
    (folder,) = (tmp_path / "cache").iterdir()
    view_id = earlier_key(view, [], 12, default=False)
    assert folder.name == f"tiny-{backbone_fingerprint(bb)[:16]}-{view_id}"
