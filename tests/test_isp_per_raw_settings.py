"""isp-tune: a per-image CMA-ES result used only for the raw it searched, ``IspEnv.step()`` before the first
``reset()`` (docs/robustness.md rows)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import attiqa
from isp_env.mos_function import from_scorer


def test_a_per_image_search_saved_for_another_raw_under_its_name_is_made_again(tmp_path, isp_raws):
    """**Was** reused: ``cma_per_image.json`` was keyed by output name alone, so a resume killed after a
    renamed raw's files were written but before its search was made again (the next resume no longer sees
    the rename) gave ``sub/x.dng`` the search of ``sub__x.dng`` saved under ``sub__x``. Now each result
    records its raw and is used only for it (an earlier version's, with no raw, has no digest of its
    inputs either: made again); other raws' results stay in the file. Real raws, the real classical
    scorer."""
    from isp_env.run import HeldOutItems, image_keys, per_image_cma, search_inputs
    from isp_env.train_config import TrainConfig

    raw_dir = tmp_path / "raws"
    (raw_dir / "sub").mkdir(parents=True)
    x, sub_x, y = raw_dir / "sub" / "x.dng", raw_dir / "sub__x.dng", raw_dir / "y.dng"
    for p, src in ((x, isp_raws[0]), (sub_x, isp_raws[1]), (y, isp_raws[2])):
        p.write_bytes(src.read_bytes())
    paths = image_keys([x, sub_x, y], raw_dir)
    name = {p: k for k, p in paths.items()}
    assert name[x] == "sub__x" and name[sub_x].startswith("sub__x-") and name[y] == "y"

    marker = {"marker": 1.0}  # a saved result's parameters, told apart from any search's
    digest = search_inputs(TrainConfig(seed=0), None)  # of the searches below: kept if all else fits
    saved = {"params": marker, "score": 0.0, "calls": 12, "budget": 12, "inputs": digest}
    out = tmp_path / "run"
    (out / "baselines").mkdir(parents=True)
    (out / "baselines" / "cma_per_image.json").write_text(
        json.dumps(
            {
                "sub__x": {**saved, "raw": str(sub_x)},  # the other raw's search under this name
                name[sub_x]: {k: v for k, v in saved.items() if k != "inputs"},  # an earlier version's
                "y": {**saved, "raw": str(y)},  # its own raw's: kept
                "gone": {**saved, "raw": str(raw_dir / "gone.dng")},  # a raw not evaluated now: stays
            }
        )
    )
    mos = from_scorer(attiqa.create_scorer("classical"))
    items = HeldOutItems(paths, None, 64)
    per = per_image_cma(out, TrainConfig(seed=0), mos, items, raw_dir, 12)
    assert per["y"]["params"] == marker
    for p in (x, sub_x):
        assert per[name[p]]["params"] != marker and per[name[p]]["raw"] == str(p)
    on_disk = json.loads((out / "baselines" / "cma_per_image.json").read_text())
    assert on_disk == per and on_disk["gone"]["params"] == marker
    calls = mos.calls
    assert per_image_cma(out, TrainConfig(seed=0), mos, items, raw_dir, 12) == per  # all kept now
    assert mos.calls == calls


def test_a_step_before_the_first_reset_raises_gymnasiums_reset_needed(isp_raws):
    """**Was** a plain ``RuntimeError`` while a step after the episode's end raised Gymnasium's
    ``ResetNeeded`` (as its ``OrderEnforcing`` wrapper does before the first ``reset()``): a loop catching
    one missed the other. Now both are ``ResetNeeded`` naming ``reset()``; nothing is scored."""
    from gymnasium.error import ResetNeeded

    from isp_env.env import ISPTuningEnv

    scorer = from_scorer(attiqa.create_scorer("classical"))
    env = ISPTuningEnv(isp_raws, scorer=scorer, preview=64, obs_size=32, max_steps=1, obs_mode="stats")
    action = np.zeros(16, dtype=np.float32)
    calls = scorer.calls
    with pytest.raises(ResetNeeded, match=r"no episode has started: call reset\(\) before step\(\)"):
        env.step(action)
    assert scorer.calls == calls
    env.reset(seed=0)
    assert env.step(action)[2]
    with pytest.raises(ResetNeeded, match=r"call reset\(\) before step\(\)"):
        env.step(action)


def test_the_printed_table_says_how_often_each_method_beats_neutral():
    """**Was** means alone at two digits: an agent above neutral on two of three raws and one above it on
    none printed alike ("0.54 0.48"); report.md had the share. Now a ``beats`` column (guarded score above
    neutral's), blank for neutral itself."""
    from isp_env.report import printed_table, summarise

    guarded = {"neutral": [0.48, 0.50, 0.47], "teacher": [0.49, 0.51, 0.40]}
    rows = [
        {"image": f"r{i}", "method": m, "mos": 0.5, "guarded": g, "clipped": 0.1, "saturation": 0.4}
        for m, gs in guarded.items()
        for i, g in enumerate(gs)
    ]
    columns, table, legend = printed_table(summarise(rows, {}))
    beats = list(columns).index("> neutral, guarded")
    assert {name: cells[beats] for name, cells in table} == {"neutral defaults": "", "teacher policy": "67 %"}
    assert columns["> neutral, guarded"] in legend


def test_a_crop_title_keeps_three_digits_when_they_end_in_zero():
    """**Was** ``guarded 0.5`` beside ``guarded 0.477`` (``:.3g`` drops trailing zeros): read as a rounder
    figure. Now ``0.500``; a 0-100 scorer's ``55.3`` stays as it was."""
    from isp_env.report import crop_title

    title = crop_title("neutral", {"mos": 55.3, "guarded": 0.5, "clipped": 0.14})
    assert "MOS 55.3, guarded 0.500, clip 14%" in title


def test_render_params_of_a_run_picks_the_setting_recorded_for_the_raw(tmp_path, isp_raws):
    """**Was** ``isp-tune render RAWS/sub__x.dng --params RUN/baselines/cma_per_image.json`` rendered with
    the setting saved under ``sub__x`` — ``sub/x.dng``'s (names were matched by the raw's stem; the file's
    own raw went under ``sub__x-HASH``). Now the setting recording this raw. The real command."""
    from typer.testing import CliRunner

    from isp_env.cli import app
    from isp_env.params import neutral

    raw_dir = tmp_path / "raws"
    (raw_dir / "sub").mkdir(parents=True)
    x, sub_x = raw_dir / "sub" / "x.dng", raw_dir / "sub__x.dng"
    x.write_bytes(isp_raws[0].read_bytes())
    sub_x.write_bytes(isp_raws[1].read_bytes())
    dark, bright = {**neutral(), "tone_exposure": -1.0}, {**neutral(), "tone_exposure": 1.0}
    per = tmp_path / "cma_per_image.json"
    per.write_text(
        json.dumps(
            {
                "sub__x": {"raw": str(x), "params": dark, "budget": 1},
                "sub__x-1234abcd": {"raw": str(sub_x), "params": bright, "budget": 1},
            }
        )
    )
    for raw, want in ((sub_x, 1.0), (x, -1.0)):
        out = tmp_path / f"{raw.stem}.png"
        r = CliRunner().invoke(app, ["render", str(raw), "--params", str(per), "-o", str(out)])
        assert r.exit_code == 0, r.output + repr(r.exception)
        assert json.loads(Path(f"{out}.json").read_text())["params"]["tone_exposure"] == want
