"""isp-tune: a finished run whose settings hold a non-finite number is found finished (one rule of "these
settings", where two had drifted apart)."""

from __future__ import annotations

import math
from pathlib import Path

from isp_env.run import finished_run, invocation_record, record_finished
from isp_env.train_config import TrainConfig


def test_a_finished_run_whose_settings_hold_a_non_finite_number_is_found_finished(tmp_path: Path) -> None:
    """finished.json is written by ``write_json_atomic`` (a float that is not finite stored as null), and a
    rerun's invocation is compared with it: the record made by ``json.dumps`` kept ``inf`` (read back as
    inf, never equal to the stored null), so such a run was never found finished and was redone. Now the
    record is made as the file stores it (``json_text``)."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "report.md").write_text("done\n")
    settings = {"test_fraction": 0, "a_setting": math.inf}
    invocation = invocation_record(tmp_path / "raws", [], TrainConfig(), {"name": "classical"}, settings)
    record_finished(out, invocation)
    again = invocation_record(tmp_path / "raws", [], TrainConfig(), {"name": "classical"}, settings)
    assert finished_run(out, again) == []  # finished (no held-out share: no summary rows), not work left
