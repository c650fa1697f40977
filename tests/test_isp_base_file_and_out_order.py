"""`isp-tune`: its `--base` file read once, and the cheap checks (the output folder, the `--init-policy` file)
said before the raws are listed and before torch."""

from __future__ import annotations

import json
from pathlib import Path

from early_checks import ISP_HEAVY, check
from helpers import opens_of

ISP = "isp_env.cli"


def test_isp_tune_reads_its_base_file_once(tmp_path, isp_raws, isp_cli):
    """**Was**: `isp-tune --base F` read F in the command's check (to say a bad file before torch loads) and
    again in the run; a file edited in between was run with another base than the one checked. Now the
    check's reading is handed on (the run's inputs, `isp_env.run_inputs.RunInputs`). The run stops at its
    reward model, after the base."""
    base = tmp_path / "base.json"
    base.write_text(json.dumps({"tone_exposure": 0.1}))
    with opens_of(base) as opened:
        res = isp_cli(
            "--raw-dir", isp_raws[0].parent, "--out", tmp_path / "run", "--base", base,
            "--model", tmp_path / "nope.safetensors",
        )  # fmt: skip
    assert res.returncode == 2 and "nope.safetensors: checkpoint not found" in res.stderr, res.stderr
    assert len(opened) == 1, opened  # read once, by the check before the raws


def test_the_output_folder_and_init_policy_are_told_before_the_raws_are_listed(tmp_path: Path) -> None:
    """**Was**: `isp-tune` listed and probed the raws (minutes for a FiveK-sized folder) before run()'s checks
    of `--out` (another command's report in it) and of the `--init-policy` file: with a raw folder that
    cannot be split too, the raws' error came first. Now the cheap checks come first, before torch."""
    raws = tmp_path / "raws"  # no raw in it: its listing is refused ("found 0 raw file(s)")
    raws.mkdir()
    other = tmp_path / "eval"  # an `attiqa eval` folder
    other.mkdir()
    (other / "summary.json").write_text("{}")
    tune = ["--raw-dir", str(raws)]
    check(
        [
            (ISP, [*tune, "--out", str(other)], "a folder holding another command's summary.json"),
            (
                ISP,
                [*tune, "--out", str(tmp_path / "run"), "--init-policy", str(tmp_path / "nope.safetensors")],
                "nope.safetensors: no such policy file",
            ),
        ],
        ISP_HEAVY,
    )
