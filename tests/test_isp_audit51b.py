"""Session 51's second isp-tune round: a resume's render check reads the whole file, output names that do
not depend on the evaluated sample, ``IspEnv.step()`` after the episode's end (docs/robustness.md rows)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
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


def test_a_step_after_the_episode_ended_is_refused_naming_reset(isp_raws):
    """**Was** a step past ``terminated`` taken like any other (Gymnasium leaves it undefined; a loop that
    forgot ``reset()`` scored renders on a stale episode, its time feature stuck at 1). Now
    ``gymnasium.error.ResetNeeded`` names ``reset()``; the next episode plays, and both checkers pass."""
    import warnings

    from gymnasium.error import ResetNeeded
    from gymnasium.utils.env_checker import check_env as gym_check
    from stable_baselines3.common.env_checker import check_env as sb3_check

    import attiqa
    from isp_env.env import ISPTuningEnv
    from isp_env.mos_function import from_scorer

    scorer = from_scorer(attiqa.create_scorer("classical"))
    for steps in (1, 3):
        env = ISPTuningEnv(
            isp_raws, scorer=scorer, preview=64, obs_size=32, max_steps=steps, obs_mode="stats"
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gym_check(env, skip_render_check=True)
            sb3_check(env, warn=True)
        assert [str(w.message) for w in caught] == []
        env.reset(seed=0)
        action = np.zeros(16, dtype=np.float32)
        ended = [env.step(action)[2] for _ in range(steps)]
        assert ended == [False] * (steps - 1) + [True]
        calls = scorer.calls
        with pytest.raises(ResetNeeded, match=r"call reset\(\) before step\(\) again"):
            env.step(action)
        assert scorer.calls == calls  # nothing scored
        env.reset()
        assert env.step(action)[2] == (steps == 1)
