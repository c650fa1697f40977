"""Session 56 review mends of `isp-tune`: its `--base` file read once."""

from __future__ import annotations

import json

from test_mend56_label import OPENED, WATCHED


def test_isp_tune_reads_its_base_file_once(tmp_path, isp_raws, isp_cli):
    """**Was**: `isp-tune --base F` read F in the command's check (to say a bad file before torch loads) and
    again in the run; a file edited in between was run with another base than the one checked. Now the
    check's reading is handed on (`run(start=…)`). The run stops at its reward model, after the base."""
    base = tmp_path / "base.json"
    base.write_text(json.dumps({"tone_exposure": 0.1}))
    WATCHED.add(str(base))
    OPENED.clear()
    try:
        res = isp_cli(
            "--raw-dir", isp_raws[0].parent, "--out", tmp_path / "run", "--base", base,
            "--model", tmp_path / "nope.safetensors",
        )  # fmt: skip
    finally:
        WATCHED.discard(str(base))
    assert res.returncode == 2 and "nope.safetensors: checkpoint not found" in res.stderr, res.stderr
    assert len(OPENED) == 1, OPENED  # read once, by the check before the raws
