"""isp-tune: a resume's render check reads the whole file, output names that do not depend on the evaluated
sample, ``IspEnv.step()`` after the episode's end (docs/robustness.md rows)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from isp_env.cli import app
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


def test_a_colliding_raws_output_name_does_not_depend_on_the_sample(tmp_path, isp_raws):
    """**Was** ``sub__x.dng`` beside ``sub/x.dng`` named ``sub__x-HASH`` when both were evaluated but
    ``sub__x`` in a ``--test-raws`` sample without ``sub/x.dng``: another sample renamed its render and
    parameters, and gave ``sub/x.dng`` the file of ``sub__x.dng`` under its name. Now names come from the
    raw folder's whole listing; a folder of an earlier isp-tune's names is said once and its files under a
    name now another raw's are not taken as that raw's. The real `isp-tune check`."""
    from isp_env.run import capped
    from isp_env.run_inputs import scene_groups

    raw_dir = tmp_path / "raws"
    (raw_dir / "sub").mkdir(parents=True)
    first, second = raw_dir / "sub" / "x.dng", raw_dir / "sub__x.dng"
    for p, src in ((first, isp_raws[0]), (second, isp_raws[1])):
        p.write_bytes(src.read_bytes())
    raws = [first, second]
    seed = next(s for s in range(50) if capped(raws, 1, scene_groups(raws, raw_dir), s, "")[0] == [second])

    def check(out: Path, *extra: str) -> str:
        args = ["check", str(raw_dir), "-m", "classical", "--out", str(out), *extra]
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 0, r.output + repr(r.exception)
        return r.output

    def names(out: Path) -> dict[str, str]:
        """Raw file name -> the name of its parameter file."""
        pdir = out / "test" / "policy" / "params"
        return {Path(json.loads(f.read_text())["raw"]).name: f.stem for f in pdir.glob("*.json")}

    check(tmp_path / "all")
    check(tmp_path / "sample", "--test-raws", "1", "--seed", str(seed))
    both, alone = names(tmp_path / "all"), names(tmp_path / "sample")
    assert set(alone) == {"sub__x.dng"} and alone["sub__x.dng"] == both["sub__x.dng"] != "sub__x"
    assert both["x.dng"] == "sub__x"

    run = tmp_path / "sample"  # as an earlier isp-tune named the sample's outputs: the bare name
    new = alone["sub__x.dng"]
    for f in run.glob(f"test/*/*/{new}.*"):
        f.rename(f.with_name("sub__x" + f.name[len(new) :]))
    said = check(run)
    assert f"1 raw(s) have new output names (sub__x -> {new})" in " ".join(said.split())
    assert names(run) == both  # sub/x.dng tuned anew, not given sub__x.dng's file
    assert "new output names" not in check(run)  # said once
