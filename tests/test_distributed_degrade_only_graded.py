"""A train's degrade stage whose sources hold only graded sets (an earlier degrade's output), alone and
under real torchrun (2 processes, gloo)."""

from __future__ import annotations

import pytest
from helpers import degrade_config, one_line_error, run_attiqa


def only_graded(cli, root):
    """:func:`helpers.degrade_config`'s run, its ``src`` moved into a graded set ``only/degraded``, and
    ``degrade.sources`` pointed at ``only`` (a folder holding that set alone)."""
    cfg = degrade_config(root)
    assert (
        cli(
            "degrade", root / "src", "-o", root / "only" / "degraded", "--distortions", "gaussian_blur"
        ).returncode
        == 0
    )
    cfg.write_text(cfg.read_text().replace(f"sources: [{root / 'src'}]", f"sources: [{root / 'only'}]"))
    return cfg


def test_sources_holding_only_a_graded_set_are_refused_naming_the_key(cli, tmp_path):
    """**Was**: "left out 12 image(s) of the graded set …", then an empty RUN/graded and "no images found
    in RUN/graded — pass image files or folders" (a setting the user never wrote). Now one line naming
    degrade.sources and the fix; no graded set made."""
    cfg = only_graded(cli, tmp_path)
    res = cli("train", "-c", cfg)
    line = one_line_error(res)
    assert line.startswith("error: degrade.sources: no photos in "), line
    assert "list folders of photos in degrade.sources" in line, line
    assert "RUN" not in line and "run/graded" not in line, line
    assert "left out" in res.stdout + res.stderr
    assert not (tmp_path / "run" / "graded").exists()


@pytest.mark.slow
@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_under_torchrun_the_refusal_is_said_once_and_every_rank_ends(cli, tmp_path):
    """The stage runs on rank 0 before a barrier: rank 0's refusal must reach rank 1 (else it waits at the
    barrier until the job's timeout). Both end, one line, said by rank 0 as the job's."""
    cfg = only_graded(cli, tmp_path)
    res = run_attiqa("train", "-c", cfg, ranks=2, env={"OMP_NUM_THREADS": "1"})
    ours = res.stderr.split("torch/distributed/elastic")[0]
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert res.returncode != 0, res.stderr[-3000:]
    assert len(errors) == 1 and errors[0].startswith("error: degrade.sources: no photos in "), errors
    assert "Traceback" not in ours, ours
