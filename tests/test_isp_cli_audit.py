"""A new user's audit of the `isp-tune` command line (session 45): what a user types, on real DNGs read by
rawpy, refused in one line before any work starts."""

from __future__ import annotations

from typer.testing import CliRunner

from isp_env.cli import app


def test_a_huge_preview_or_observation_size_is_refused_before_any_raw_is_read(tmp_path, isp_raws):
    """**Was** `--preview 100000000` an upscale of the first raw to a 10**8-px side: a torch traceback
    ("can't allocate memory: you tried to allocate 68360655600000000 bytes") after the reward model loaded;
    now the option parser refuses it (and `--obs-size` alike) in one line naming the option."""
    raws = isp_raws[0].parent
    for option in ("--preview", "--obs-size"):
        out = tmp_path / option.strip("-")
        r = CliRunner().invoke(app, ["--raw-dir", str(raws), "--out", str(out), option, "100000000"])
        assert r.exit_code == 2, (option, r.output, repr(r.exception))
        assert f"Invalid value for '{option}'" in r.output
        assert not out.exists()


def test_check_prints_each_raw_s_whole_name_in_an_80_column_log(tmp_path, isp_raws):
    """**Was** the table's raw column cut with an ellipsis when the output is not a wide terminal (a log, a
    pipe: 80 columns): the real raws' rows all read "a2tools…", one raw not told from another; now the name
    folds over lines and every character of it is printed."""
    import shutil

    raws = tmp_path / "raws"
    raws.mkdir()
    name = "a2tools__quicktake_IMAGE01"  # the length of ../shared/data/raw/real's names
    shutil.copy(isp_raws[0], raws / f"{name}.dng")
    out = tmp_path / "check"
    r = CliRunner(env={"COLUMNS": "80"}).invoke(app, ["check", str(raws), "--out", str(out)])
    assert r.exit_code == 0, r.output + repr(r.exception)
    cells = [line.split("│")[1].strip() for line in r.output.splitlines() if line.startswith("│")]
    assert "".join(cells) == name, cells
