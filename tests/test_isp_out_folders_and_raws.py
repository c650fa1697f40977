"""isp-tune: one stamp function for a run's files, an --out folder of another isp-tune command refused before
the work, a raw folder of hostile files (docs/robustness.md rows)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def test_one_file_stamp_hashed_for_renders_and_quick_for_a_finished_run(tmp_path: Path) -> None:
    """**Was**: two functions for a file's stamp (``quick_stamp``: size + mtime; ``file_stamp``: size +
    SHA-256). Now one, ``file_stamp(path, hashed=...)``: hashed, damage of the same size and mtime is seen
    (a resume must not keep a damaged render); quick, the stamp follows the mtime and never reads the file
    (a finished run's full-resolution renders are not hashed again)."""
    from isp_env.params import file_stamp
    from isp_env.run import run_files

    png = tmp_path / "r.png"
    png.write_bytes(b"a" * 4096)
    st = png.stat()
    hashed, quick = file_stamp(png, hashed=True), file_stamp(png, hashed=False)
    assert hashed is not None and quick == [4096, st.st_mtime_ns]
    png.write_bytes(b"a" * 2000 + b"b" + b"a" * 2095)  # same size, one byte in the middle
    os.utime(png, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the same mtime
    assert file_stamp(png, hashed=False) == quick
    assert file_stamp(png, hashed=True) != hashed
    os.utime(png, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert file_stamp(png, hashed=False) != quick
    assert run_files(tmp_path) == {"r.png": file_stamp(png, hashed=False)}
    assert file_stamp(tmp_path / "gone.png", hashed=True) is None
    assert file_stamp(tmp_path / "gone.png", hashed=False) is None
    import isp_env.run as run

    assert not hasattr(run, "quick_stamp")


def _stamps(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    return {
        str(p): (p.stat().st_mtime_ns, p.stat().st_size, p.read_bytes())
        for p in folder.rglob("*")
        if p.is_file()
    }


def _another_commands_report(folder: Path) -> None:
    """What ``attiqa eval -o FOLDER`` leaves (predictions.csv, summary.json, scatter.png): a report of
    another kind, which an isp-tune report would replace."""
    folder.mkdir()
    (folder / "predictions.csv").write_text("image,mos,prediction\na.jpg,50,48.5\n")
    (folder / "summary.json").write_text('{"dataset": "folder", "srocc": 0.8}\n')
    (folder / "scatter.png").write_bytes(b"\x89PNG\r\n\x1a\n")


@pytest.mark.slow  # a real check, then two refusals: ~25 s
def test_each_out_folder_of_isp_tune_is_refused_by_the_others_before_any_work(tmp_path, isp_raws):
    """**Was**: ``isp-tune --raw-dir RAWS --out CHECK`` (the folder of an earlier ``isp-tune check -o
    CHECK``) wrote the run's results.csv, summary.json, report.md and grid.png over the check's, and
    ``isp-tune`` or ``isp-tune check`` into another command's report folder (an eval's summary.json) over
    its files, without a word. Now each refuses before any work, in one line naming the folder and the fix
    (another --out); a check rerun over its own folder and a run resumed in its own still run."""
    from helpers import TINY_TEACHER_OPTIONS
    from typer.testing import CliRunner

    from isp_env.cli import app

    raw_dir = tmp_path / "raws"
    raw_dir.mkdir()
    for p in isp_raws:
        (raw_dir / p.name).write_bytes(p.read_bytes())
    check = tmp_path / "check"
    r = CliRunner().invoke(app, ["check", str(raw_dir), "-m", "classical", "-o", str(check)])
    assert r.exit_code == 0, r.output
    before = _stamps(check)
    r = CliRunner().invoke(app, ["--raw-dir", str(raw_dir), "--out", str(check), *TINY_TEACHER_OPTIONS])
    said = str(r.exception)
    assert r.exit_code != 0 and "\n" not in said, r.output
    assert said == (
        f"{check}: an isp-tune check's report folder (summary.json) — the run's report would replace the "
        f"check's; pass another --out, e.g. {check / 'run'}"
    )
    assert _stamps(check) == before  # nothing written, nothing removed
    other = tmp_path / "eval"
    _another_commands_report(other)
    theirs = _stamps(other)
    for args, kind in (
        (["--raw-dir", str(raw_dir), "--out", str(other), *TINY_TEACHER_OPTIONS], "run"),
        (["check", str(raw_dir), "-m", "classical", "-o", str(other)], "check"),
    ):
        r = CliRunner().invoke(app, args)
        assert r.exit_code != 0 and str(r.exception) == (
            f"{other}: a folder holding another command's summary.json — the {kind}'s report would "
            f"replace those; pass another --out, e.g. {other / kind}"
        ), r.output
        assert _stamps(other) == theirs
    r = CliRunner().invoke(app, ["check", str(raw_dir), "-m", "classical", "-o", str(check)])
    assert r.exit_code == 0, r.output  # a check over its own earlier check


def _raw_folder(tmp_path: Path, raws: list[Path]) -> Path:
    raw_dir = tmp_path / "raws"
    raw_dir.mkdir()
    for p in raws:
        (raw_dir / p.name).write_bytes(p.read_bytes())
    return raw_dir


def test_check_skips_a_symlink_loop_in_the_raw_folder_and_checks_the_rest(tmp_path, isp_raws, capsys):
    """**Was**: ``isp-tune check RAWS`` with a symlink loop (or a broken link) among the raws ended on
    "RAWS/loop.DNG: Too many levels of symbolic links" before any raw was checked: the scene groups
    stat'ed every raw, unprobed (``isp-tune`` itself probes them first). Now the link is skipped in one
    line naming it and every real raw is checked."""
    from isp_env.run import check_policy
    from isp_env.run_inputs import check_inputs

    raw_dir = _raw_folder(tmp_path, isp_raws)
    (raw_dir / "loop.DNG").symlink_to("loop.DNG")
    (raw_dir / "gone.DNG").symlink_to("nowhere.DNG")
    rows = check_policy(check_inputs(raw_dir, tmp_path / "check", "default"), "classical", front_ends=2)
    assert sorted(r["image"] for r in rows) == sorted(p.stem for p in isp_raws)
    said = capsys.readouterr()
    lines = (said.out + said.err).splitlines()
    for name, why in (("loop.DNG", "symlink loop"), ("gone.DNG", "broken link")):
        hit = [ln for ln in lines if ln.startswith("skipped") and name in ln]
        assert len(hit) == 1 and why in hit[0], lines


@pytest.mark.slow  # a real check in its own unprivileged process: ~20 s
def test_a_raw_without_read_permission_is_skipped_as_such(tmp_path, isp_raws):
    """**Was**: a raw the user may not read (mode 000, a copy of another raw of the same size) ended
    ``isp-tune check`` on a PermissionError (the scene groups compared the ends of same-size raws), and
    ``isp-tune`` skipped it as "LibRaw can't read it (LibRawIOError: Input/output error): the file ends
    early or is not a raw" — the wrong cause and fix. Now both skip it in one line: "permission denied —
    give yourself read permission ..."; the check checks every other raw."""
    import subprocess

    from helpers import attiqa_env, isp_tune_cmd, unprivileged_cmd

    raw_dir = _raw_folder(tmp_path, isp_raws)
    locked = raw_dir / "locked.dng"
    locked.write_bytes(isp_raws[0].read_bytes())
    locked.chmod(0)
    cmd = unprivileged_cmd(isp_tune_cmd("check", raw_dir, "-m", "classical", "-o", tmp_path / "check"))
    res = subprocess.run(cmd, env=attiqa_env({"COLUMNS": "200"}), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    said = (res.stdout + res.stderr).splitlines()
    hit = [ln for ln in said if "locked.dng" in ln]
    assert len(hit) == 1 and hit[0].startswith("skipped") and "permission denied" in hit[0], said
    assert "LibRaw" not in hit[0]
    checked = (tmp_path / "check" / "results.csv").read_text()
    assert all(p.stem in checked for p in isp_raws) and "locked" not in checked
