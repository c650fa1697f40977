"""Session 51's second isp-tune round: a resume's render check reads the whole file, output names that do
not depend on the evaluated sample, ``IspEnv.step()`` after the episode's end (docs/robustness.md rows)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from isp_env.run import save_render


def holds(png: Path, img: np.ndarray) -> bool:
    """Whether ``png`` decodes to ``img`` (a damaged PNG may not decode at all)."""
    try:
        return np.array_equal(np.asarray(Image.open(png).convert("RGB")), img)
    except OSError:
        return False


def test_a_render_damaged_in_the_middle_keeping_its_size_is_written_again(tmp_path):
    """**Was** kept: a resume compared the render's size and a hash of its first and last 64 KiB with its
    record, so bytes damaged in between (a bad sector, a half-synced copy) went unseen and the damaged PNG
    stayed in the run. Now the record holds the whole file's SHA-256 (1-5 % of a decode: docs/isp.md)."""
    img = np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8)  # ~480 KB of PNG
    png = tmp_path / "raw.png"
    assert save_render(png, img, {"raw": "raw.dng"})
    data = bytearray(png.read_bytes())
    assert len(data) > 4 * (1 << 16)  # the middle is outside the first and last 64 KiB
    mid = len(data) // 2
    data[mid : mid + 16] = bytes(b ^ 0xFF for b in data[mid : mid + 16])
    png.write_bytes(bytes(data))
    assert not holds(png, img)  # damaged, same size
    assert save_render(png, img, {"raw": "raw.dng"})  # written again
    assert holds(png, img)
    assert json.loads(Path(f"{png}.json").read_text())["file"][0] == png.stat().st_size
    assert not save_render(png, img, {"raw": "raw.dng"})  # whole: kept, not rewritten
