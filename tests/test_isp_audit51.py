"""Session 51's isp-tune audit: a resume's render check, a mixed raw folder, a kill mid-run, help at 80
columns, parameter files of earlier versions (docs/robustness.md rows). Real runs on DNGs read by rawpy,
the classical scorer, seconds each."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY_TEACHER_OPTIONS
from PIL import Image
from typer.testing import CliRunner

import isp_env.run
from isp_env.cli import app


def teacher_run(raw_dir: Path, run: Path, *extra: object) -> str:
    """The tiny teacher run of ``helpers.TINY_TEACHER_OPTIONS`` with baselines off, in this process."""
    args = ["--raw-dir", raw_dir, "--out", run, *TINY_TEACHER_OPTIONS, "--no-baselines", *extra]
    r = CliRunner().invoke(app, list(map(str, args)))
    assert r.exit_code == 0, r.output + repr(r.exception)
    return r.output


def copied(raws: list[Path], folder: Path) -> Path:
    folder.mkdir()
    for p in raws:
        (folder / p.name).write_bytes(p.read_bytes())
    return folder


@pytest.mark.slow  # four tiny runs: ~20 s
def test_a_resume_checks_its_renders_without_decoding_them(tmp_path, isp_raws, monkeypatch):
    """**Was** every render of a resumed run decoded to compare its pixels (``save_render``): 0.7 s a 24 MP
    PNG, minutes at FiveK scale. Now each render has ``RAW.png.json`` beside it (its raw and setting, the
    pixels' SHA-256, the file's size and a hash of its ends) and a resume decodes none; a run of an earlier
    version (no record) is decoded once and recorded; a render cut short or replaced is written again."""
    raw_dir = copied(isp_raws, tmp_path / "raws")
    run = tmp_path / "run"
    teacher_run(raw_dir, run)
    pngs = sorted((run / "test" / "teacher").glob("renders/*.png")) + sorted(
        (run / "test" / "teacher_checked").glob("renders/*.png")
    )
    assert pngs
    for png in pngs:
        rec = json.loads(Path(f"{png}.json").read_text())
        assert rec["pixels_sha256"] and rec["file"][0] == png.stat().st_size and rec["params"]
    decoded: list[Path] = []
    real_load = isp_env.run.load_image

    def counted(path, *a, **kw):
        decoded.append(Path(path))
        return real_load(path, *a, **kw)

    monkeypatch.setattr(isp_env.run, "load_image", counted)
    stamps = {p: p.stat().st_mtime_ns for p in pngs}
    teacher_run(raw_dir, run)
    assert decoded == [] and {p: p.stat().st_mtime_ns for p in pngs} == stamps

    for png in pngs:  # a run of an earlier version: its renders have no record
        Path(f"{png}.json").unlink()
    teacher_run(raw_dir, run)
    assert sorted(decoded) == sorted(pngs) and {p: p.stat().st_mtime_ns for p in pngs} == stamps
    assert all(Path(f"{p}.json").is_file() for p in pngs)  # recorded: the next resume decodes none
    want = {p: np.asarray(Image.open(p).convert("RGB")) for p in pngs}

    decoded.clear()
    cut, replaced = pngs[0], pngs[-1]
    cut.write_bytes(cut.read_bytes()[:200])  # damaged
    Image.new("RGB", (8, 8), "red").save(replaced)  # another picture
    teacher_run(raw_dir, run)
    for png in (cut, replaced):
        assert np.array_equal(np.asarray(Image.open(png).convert("RGB")), want[png])
        assert json.loads(Path(f"{png}.json").read_text())["file"][0] == png.stat().st_size
    assert sorted(decoded) == sorted({cut, replaced})  # the others were not decoded
    again = tmp_path / "again.png"  # the record is a setting `isp-tune render --params` reads
    rec = json.loads(Path(f"{cut}.json").read_text())
    r = CliRunner().invoke(app, ["render", rec["raw"], "--params", f"{cut}.json", "-o", str(again)])
    assert r.exit_code == 0, r.output
    assert np.array_equal(np.asarray(Image.open(again).convert("RGB")), want[cut])
