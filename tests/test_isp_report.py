"""The isp-tune report's "> neutral" share: a method that renders neutral's own setting is not "better than
neutral" because the two scores differ in the last float digits (they are scored in other batches). Seen in
the README's 3-minute `isp-tune` check: per-image CMA-ES that kept the neutral setting was reported better
than neutral on 100 % of the raws, and the same teacher renders on 46 % in one report and 54 % in another."""

from __future__ import annotations

import json

from helpers import isp_heldout, tiny_teacher_run

from isp_env.report import policy_label, summarise


def _rows(neutral: list[float], other: list[float], method: str) -> list[dict]:
    return [
        {"image": f"r{i}", "method": m, "mos": v, "guarded": v, "clipped": 0.0, "saturation": 0.5}
        for i, pair in enumerate(zip(neutral, other, strict=True))
        for m, v in zip(("neutral", method), pair, strict=True)
    ]


def test_a_render_scored_within_float_rounding_of_neutral_does_not_beat_it():
    # the scores of isp-tune runs: the same render, scored in two batches (float32 rounding)
    neutral = [42.552967, 33.58, 29.161488, 0.4815358]
    same = [42.552971, 33.580002, 29.161493, 0.48153583]
    (s,) = [s for s in summarise(_rows(neutral, same, "cma_per_image"), {}) if s["method"] == "cma_per_image"]
    assert s["beats_neutral"] == 0.0


def test_a_real_gain_still_counts():
    neutral = [30.821186, 27.607594, 24.95331, 0.40]
    other = [31.459393, 28.550648, 24.582926, 0.41]  # +0.64, +0.94, -0.37 MOS; +0.01 on a 0-1 scorer
    (s,) = [s for s in summarise(_rows(neutral, other, "teacher"), {}) if s["method"] == "teacher"]
    assert s["beats_neutral"] == 0.75


def test_the_heldout_report_labels_a_policy_by_its_card_not_its_name(tmp_path, isp_raws):
    """Session 40: `benchmarks/isp_heldout.py --run agent=RUN` with RUN a teacher run was reported as
    "RL agent" (the label came from the name it was given); now from the policy's card, with that name."""
    raw_dir, run = tiny_teacher_run(tmp_path, isp_raws, "--no-baselines")
    kind = json.loads((run / "policy.json").read_text())["teacher"]["kind"]
    out = tmp_path / "heldout"
    summary = isp_heldout(raw_dir, out, f"agent={run}")
    report = (out / "report.md").read_text()
    assert f"| agent: teacher policy ({kind}) |" in report and "RL agent" not in report  # was "| RL agent |"
    labels = {m["method"]: m["label"] for m in summary["methods"]}
    assert labels["agent"] == f"agent: teacher policy ({kind})"
    assert (
        policy_label("teacher", {"algo": "teacher", "teacher": {"kind": kind}}) == f"teacher policy ({kind})"
    )
    assert policy_label("sac_real", {"algo": "sac"}) == "sac_real: RL agent (SAC)"
