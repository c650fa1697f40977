"""An output that cannot be written (a newcomer's pass): every command that writes checks its output folder
before its work and ends with one line naming the folder, the cause and the fix — not a traceback after
minutes of work (``isp-tune`` ran its global CMA-ES first; ``eval`` scored every image)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from helpers import run_attiqa
from PIL import Image
from typer.testing import CliRunner

from attiqa.errors import AttiqaError
from attiqa.io.atomic import output_folder
from attiqa.io.images import discover_images

runner = CliRunner()


def _png(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture()
def blocked(tmp_path) -> Path:
    """A path whose parent is a file: no folder can be made there (as root too, unlike a chmod)."""
    (tmp_path / "a_file").write_text("x")
    return tmp_path / "a_file" / "sub"


def _refused(result, blocked: Path) -> None:
    assert isinstance(result.exception, AttiqaError), result.output
    msg = str(result.exception)
    assert f"{blocked}: cannot create the output folder" in msg and "a_file is a file, not a folder" in msg
    assert "choose another --out" in msg or "choose another --output" in msg


def test_output_folder_names_the_file_in_the_way_and_the_fix(tmp_path, blocked):
    assert output_folder(tmp_path / "x" / "y").is_dir()
    with pytest.raises(
        AttiqaError,
        match=r"sub: cannot create the output folder \(.*a_file is a file, not a "
        r"folder\) — choose another --out",
    ):
        output_folder(blocked, "--out")
    from attiqa.io.atomic import write_text_atomic

    with pytest.raises(AttiqaError, match="a_file is a file, not a folder"):  # every atomic write
        write_text_atomic(blocked / "f.txt", "x")


def test_attiqa_commands_refuse_an_unwritable_output_before_the_work(tmp_path, blocked):
    from attiqa.cli.app import app

    photo = _png(tmp_path / "in" / "a.png")
    _png(tmp_path / "in" / "b.png", seed=1)
    with open(tmp_path / "in" / "mos.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["image", "mos"], ["a.png", 1.0], ["b.png", 2.0]])
    src = str(tmp_path / "in")
    for args in (
        ["degrade", src, "--out", str(blocked), "--levels", "1"],
        ["label", src, "--out", str(blocked / "l.parquet")],
        ["distort", str(photo), "--type", "gaussian_blur", "--level", "1", "-o", str(blocked / "o.png")],
        ["gallery", str(photo), "-o", str(blocked / "g.png"), "--types", "gaussian_blur"],
        ["make-distorted", src, "--rounds", "1", "--out", str(blocked)],
        ["demo", "--out", str(blocked)],
        ["eval", "folder", "--root", src, "--model", "classical", "--out", str(blocked)],
        ["score", src, "--model", "classical", "--out", str(blocked / "s.csv")],
    ):
        _refused(runner.invoke(app, args), blocked)
    assert not blocked.exists()
    r = runner.invoke(app, ["degrade", src, "--out", str(tmp_path / "g"), "--levels", "1,9"])
    assert isinstance(r.exception, AttiqaError)
    assert "--levels 1,9: each level must be 1..5" in str(r.exception)
    assert not (tmp_path / "g").exists()


def test_isp_tune_refuses_an_unwritable_output_before_any_search(tmp_path, blocked, isp_raws):
    from isp_env.cli import app

    raw_dir = tmp_path / "raws"
    raw_dir.mkdir()
    for p in isp_raws:
        (raw_dir / p.name).write_bytes(p.read_bytes())
    _refused(
        runner.invoke(app, ["--raw-dir", str(raw_dir), "--out", str(blocked), "--model", "classical"]),
        blocked,
    )
    _refused(runner.invoke(app, ["render", str(isp_raws[0]), "-o", str(blocked / "r.png")]), blocked)


def test_an_os_error_that_escapes_a_command_is_still_one_line(capsys):
    """The last resort of every command line (attiqa, genbench, isp-tune): exit 2 and one line."""
    from attiqa.cli import run_app

    def broken() -> None:
        raise NotADirectoryError(20, "Not a directory", "/somewhere/file.txt/x")

    with pytest.raises(SystemExit) as exc:
        run_app(broken)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "Traceback" not in err
    assert "error: /somewhere/file.txt/x: Not a directory — check the path" in err.replace("\n", " ")


def test_attiqa_train_refuses_an_unwritable_out_dir(tmp_path, blocked):
    from attiqa.cli.app import app

    _png(tmp_path / "in" / "a.png")
    (tmp_path / "mos.csv").write_text("image,mos\nin/a.png,1\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"out_dir: {blocked}\nlabel:\n  images: [{tmp_path / 'in'}]\npretrain:\n  epochs: 1\n"
        f"finetune:\n  csv: {tmp_path / 'mos.csv'}\n"
    )
    r = runner.invoke(app, ["train", "--config", str(cfg)])
    assert isinstance(r.exception, AttiqaError) and "choose another out_dir (--out-dir)" in str(r.exception)
    assert f"{blocked}: cannot create the output folder" in str(r.exception) and not blocked.exists()


def test_bench_refuses_an_unwritable_output_and_a_damaged_checkpoint_says_what_to_pass(tmp_path, blocked):
    from attiqa.cli.app import app
    from attiqa.io.checkpoints import load_checkpoint

    for i in range(4):
        _png(tmp_path / "d" / f"{i}.png", seed=i)
    (tmp_path / "d" / "mos.csv").write_text("image,mos\n" + "".join(f"{i}.png,{i}\n" for i in range(4)))
    r = runner.invoke(
        app, ["bench", "single", "-d", f"mini:folder={tmp_path / 'd'}", "-n", "1", "-o", str(blocked)]
    )
    _refused(r, blocked)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 5)
    with pytest.raises(
        AttiqaError,
        match="junk.safetensors: not a readable safetensors checkpoint .* — "
        "pass a .safetensors file written by attiqa",
    ):
        load_checkpoint(junk)


def test_label_on_an_empty_folder_names_it(tmp_path):
    """It said "no image could be labelled (0 unreadable): no images were given" after loading the teacher."""
    from attiqa.cli.app import app

    (tmp_path / "empty").mkdir()
    r = runner.invoke(app, ["label", str(tmp_path / "empty"), "--out", str(tmp_path / "l.parquet")])
    assert isinstance(r.exception, AttiqaError)
    assert str(r.exception) == f"no images found in {tmp_path / 'empty'} — pass image files or folders"


def test_output_names_that_look_like_markup_are_printed_as_they_are(tmp_path, isp_raws):
    """**Was**: ``wrote .../[draft]x.png`` printed as ``wrote .../x.png`` (rich took ``[draft]`` for a style)
    and a path holding ``[/b]`` (folders ``a[`` / ``b]``) ended the finished command in a MarkupError."""
    from attiqa.cli.app import app as attiqa_app
    from genbench.cli import app as genbench_app
    from genbench.vote.store import VOTES_DB, VoteStore
    from isp_env.cli import app as isp_app

    odd = tmp_path / "a[" / "b]"
    odd.mkdir(parents=True)
    VoteStore(odd / VOTES_DB).add("rater1", "p0", "a", "a")
    photo = str(_png(tmp_path / "in" / "p.png"))
    x, g, r, v = (odd / name for name in ("[draft]x.png", "[red]g.png", "[x]r.png", "[bold]votes.csv"))
    cases = [
        (attiqa_app, ["distort", photo, "-t", "gaussian_blur", "-l", "1", "-o", str(x)],
         f"wrote {x} (gaussian_blur level 1, seed 0)"),
        (attiqa_app, ["gallery", photo, "-o", str(g), "--types", "contrast", "--thumb", "32"],
         f"wrote {g} (1 types x 6 levels)"),
        (isp_app, ["render", str(isp_raws[0]), "-o", str(r)], f"{isp_raws[0]} -> {r} ("),
        (genbench_app, ["export-votes", str(odd), "-o", str(v)], f"{v}: 1 vote from 1 rater"),
    ]  # fmt: skip
    for app, args, line in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 0 and res.exception is None, (args, res.output)
        assert line in res.output, (line, res.output)
    assert x.is_file() and g.is_file() and r.is_file() and v.read_text().count("\n") == 2


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (("label", "--out", "{out}/labels.parquet"), "labelling (classical)"),
        (("degrade", "--out", "{out}/graded", "--levels", "1"), "degrading"),
        (("make-distorted", "--out", "{out}/set", "--rounds", "1"), "distorting"),
    ],
    ids=["label", "degrade", "make-distorted"],
)
def test_a_rerun_counts_the_earlier_work_outside_its_rate(photo_dir, tmp_path, args, what, cli):
    """Session 49: rerunning a finished `attiqa label` / `degrade` / `make-distorted` printed e.g.
    "labelling (classical): 40/40 (16881.7 img/s)": the earlier run's images were advanced as work done
    now. They are counted as kept, as genbench's and isp-tune's bars count theirs (output not a terminal)."""
    cmd = [
        args[0],
        photo_dir,
        *(a.format(out=tmp_path) for a in args[1:]),
        *(["--workers", "0"] if args[0] == "label" else []),
    ]
    assert cli(*cmd).returncode == 0  # the first run, whose work the rerun keeps
    res = run_attiqa(*cmd)
    assert res.returncode == 0, res.stderr
    n = len(discover_images([photo_dir]))
    lines = [line for line in (res.stdout + res.stderr).splitlines() if line.startswith(what + ":")]
    assert lines and lines[-1] == f"{what}: {n}/{n} (none done now, {n} kept from an earlier run)"
