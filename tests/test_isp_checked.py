"""A policy's setting checked against its base and neutral by the reward model (ours): `isp-tune render
--policy P --check`, :func:`isp_env.tuning.checked_setting` — the fall-back for raws of a camera the policy
never saw (docs/isp.md, "Checked against its base and neutral")."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from isp_env.cli import app
from isp_env.mos_function import load_mos_function
from isp_env.params import PARAMS, neutral
from isp_env.policy_files import resolve_policy
from isp_env.policy_io import load_policy
from isp_env.reward import guarded_item
from isp_env.tuning import checked_choice, checked_setting, tune_with_policy


def test_render_check_renders_the_candidate_the_reward_prefers(tmp_path, isp_raws):
    """The shipped policy on a real DNG with `--check`: the PNG is the render of the setting the check kept
    (bit for bit the `--params` render of it), the printed JSON is that setting, and the line names it."""
    raw = isp_raws[0]
    runner = CliRunner()
    r = runner.invoke(
        app, ["render", str(raw), "-o", str(tmp_path / "checked.png"), "--policy", "default", "--check"]
    )
    assert r.exit_code == 0, r.output + repr(r.exception)
    said = " ".join(r.output.split())
    policy, card = load_policy(resolve_policy("default"))
    mos = load_mos_function(None)
    c = checked_setting(tune_with_policy(policy, card, raw), card, guarded_item(raw, mos.view_shorter), mos)
    assert f"kept the {c.chosen}'s setting" in said
    assert c.scores[c.chosen] == max(c.scores.values()) and list(c.scores) == ["policy", "base", "neutral"]
    printed = json.loads(r.stdout[r.stdout.index("{") :])
    assert printed == c.params
    (tmp_path / "kept.json").write_text(json.dumps(c.params))
    r = runner.invoke(
        app, ["render", str(raw), "-o", str(tmp_path / "kept.png"), "--params", str(tmp_path / "kept.json")]
    )
    assert r.exit_code == 0, r.output
    a = np.asarray(Image.open(tmp_path / "checked.png"))
    b = np.asarray(Image.open(tmp_path / "kept.png"))
    assert np.array_equal(a, b)


def test_a_setting_that_blows_out_the_raw_falls_back(isp_raws):
    """A 'policy' pushing exposure, contrast and saturation to their ends clips most pixels: the guarded
    reward puts it below neutral and the check does not keep it; a policy that renders neutral is kept
    (a tie is the policy's) and a neutral base is not scored twice."""
    policy, card = load_policy(resolve_policy("default"))
    mos = load_mos_function(None)
    item = guarded_item(isp_raws[1], mos.view_shorter)
    ends = {
        p.name: p.high
        for p in PARAMS
        if p.name in ("tone_exposure", "contrast", "saturation", "sharpen_amount")
    }
    c = checked_setting({**neutral(), **ends}, card, item, mos)
    assert c.chosen != "policy" and c.scores["policy"] < c.scores["neutral"], c.scores
    flat = {**card, "env": {**card["env"], "base": neutral()}}
    c = checked_setting(neutral(), flat, item, mos)
    assert c.chosen == "policy" and list(c.scores) == ["policy"]


def test_checked_choice_prefers_the_earlier_candidate_unless_clearly_better():
    assert checked_choice({"policy": 10.0, "base": 12.0, "neutral": 11.0}) == "base"
    assert checked_choice({"policy": 10.0, "base": 10.0 + 1e-9, "neutral": 9.0}) == "policy"  # float rounding
    assert checked_choice({"policy": 10.0, "base": 9.0, "neutral": 10.5}) == "neutral"


def test_check_and_model_without_a_policy_are_one_line(tmp_path, isp_raws):
    runner = CliRunner()
    for args, said in (
        (["--check"], "--check checks a policy's setting: pass --policy too"),
        (["--model", "classical"], "--model checks a policy's setting: pass --policy too"),
        (["--policy", "default", "--model", "classical"], "--model is the reward model of --check"),
    ):
        r = runner.invoke(app, ["render", str(isp_raws[0]), "-o", str(tmp_path / "x.png"), *args])
        assert r.exit_code != 0 and said in str(r.exception), (args, r.exception)
    assert not (tmp_path / "x.png").exists()
