"""genbench as a user end to end — an ExIQA run without its regressor refused before scoring (`genbench
score`, `attiqa eval`; `attiqa score` says so), and the defects of the audit on real data
(docs/robustness.md)."""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import pytest
from genbench_helpers import make_photo_run
from helpers import agiqa3k_folder
from typer.testing import CliRunner

from genbench.cli import app
from genbench.files import shell_arg

pytestmark = pytest.mark.usefixtures("one_torch_thread")
runner = CliRunner()


def _said(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture()
def exiqa_run(exiqa_set, tiny_dir, tmp_path):
    """A finished tiny ExIQA run (stage 1) without its eq. (9) regressor, and the MOS CSV to fit it."""
    from attiqa.exiqa.train import ExiqaTrainConfig, train_exiqa

    data, mos = exiqa_set
    ex = tmp_path / "ex"
    cfg = ExiqaTrainConfig(clip=str(tiny_dir), epochs=1, warmup_epochs=0, batch_size=8, n_prompts=2)
    train_exiqa(data, ex, cfg)
    return ex, mos


def test_an_exiqa_run_without_its_regressor_is_refused_before_scoring(exiqa_run, tmp_path, photos, cli):
    """**Was**: `genbench score RUN -m exiqa:EX` (EX without regressor.safetensors) "10 scored": every
    row's score NaN, and `agree` measured nothing; `attiqa eval` scored every image, then warned of "a
    pretrain-only checkpoint" to fine-tune. Now both refuse before scoring, in one line naming the run and
    `attiqa train exiqa-regressor`; `attiqa score` (whose distortion columns are the explanation) says it."""
    from attiqa.exiqa.regressor import train_regressor

    ex, mos = exiqa_run
    run = make_photo_run(tmp_path / "run", photos)
    args = ["score", str(run), "-m", f"exiqa:{ex}", "--workers", "0"]
    res = runner.invoke(app, args)
    said = _said(res.output)
    assert res.exit_code != 0 and "Traceback" not in res.output, res.output
    assert str(ex) in said and f"attiqa train exiqa-regressor {ex} --mos" in said, said
    assert not list((run / "scores").glob("exiqa*.csv"))  # no NaN rows written
    res = runner.invoke(app, ["score", str(run), "-m", f"classical,exiqa:{ex}", "--workers", "0"])
    said = _said(res.output)
    assert res.exit_code == 0 and "classical: 10 scored" in said and "skipped exiqa:" in said, said

    out = tmp_path / "ev"
    res = cli("eval", "folder", "--root", mos.parent, "--csv", mos, "-m", f"exiqa:{ex}", "-o", out)
    said = _said(res.stdout + res.stderr)
    assert res.returncode == 2 and f"attiqa train exiqa-regressor {ex} --mos" in said, said
    assert not (out / "predictions.csv").exists()

    image = sorted(mos.parent.rglob("*.png"))[0]
    res = cli("score", image, "-m", f"exiqa:{ex}", "-o", tmp_path / "s.csv")
    said = _said(res.stdout + res.stderr)
    assert res.returncode == 0 and "top distortions" in said, said
    assert f"attiqa train exiqa-regressor {ex} --mos" in said, said

    train_regressor(ex, mos, epochs=3)  # the fix it names: then scored
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and "10 scored, 0 already scored" in _said(res.output), res.output


def test_the_pair_sheet_frames_whose_choice_it_says(tmp_path):
    """**Was** (experiments/agiqa3k/pair_sheet.py after `genbench agree RUN` measured the run's own votes —
    votes.sqlite once anyone voted, or ``--prefs FILE``): "green frame = the image people rated higher"
    over a frame on the image of the lower MOS printed under it (the frame was the voters' choice, the MOS
    AGIQA-3k's); with ``--same-generator``, 528 pairs counted under the title of all pairs. Now the title
    names the votes file and each image's votes are under it; one generator's pairs are said."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments" / "agiqa3k"))
    import pair_sheet

    run = tmp_path / "run"
    for args in (
        ["import-agiqa3k", str(agiqa3k_folder(tmp_path / "agiqa")), "-o", str(run)],
        ["score", str(run), "-m", "classical", "-w", "0"],
        ["agree", str(run), "--bootstrap", "100"],
    ):
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
    assert pair_sheet.votes_source(run) is None  # the import's MOS: the frame is the higher MOS
    pairs = list(pair_sheet.read_records(run))
    mine = tmp_path / "mine.csv"  # every vote for the image of the lower MOS
    mine.write_text(
        "pair_id,choice\n"
        + "".join(f"{r['pair_id']},{'a' if r['mos_a'] < r['mos_b'] else 'b'}\n" for r in pairs)
    )
    res = runner.invoke(app, ["agree", str(run), "--prefs", str(mine), "--bootstrap", "100"])
    assert res.exit_code == 0, res.output
    assert pair_sheet.votes_source(run) == "mine.csv"
    rows = pair_sheet.read_rows(run, "classical")
    good, bad = pair_sheet.pick(rows, "classical", 2, 0, None)
    fig = pair_sheet.sheet_figure(run, good + bad, "classical", "counts", votes=pair_sheet.votes_source(run))
    title = fig.get_suptitle()
    assert "green frame = the image the votes in mine.csv preferred" in title and "rated higher" not in title
    for k, r in enumerate(good + bad):
        for i, side in enumerate("ab"):
            ax = fig.axes[2 * k + i]
            framed = next(iter(ax.spines.values())).get_linewidth() == 4
            label = ax.get_xaxis().get_label().get_text()
            assert f"votes {r[f'votes_{side}']}" in label, label
            assert framed == (int(r[f"votes_{side}"]) > int(r[f"votes_{'b' if side == 'a' else 'a'}"]))
            assert framed == (float(r[f"mos_{side}"]) < float(r[f"mos_{'b' if side == 'a' else 'a'}"]))
    fig = pair_sheet.sheet_figure(run, good, "classical", "counts", same_generator=True)
    assert "(same prompt, same generator)" in fig.get_suptitle()
    with open(run / "agreement" / "per_pair.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == len(pairs)


def test_an_agiqa3k_run_whose_images_moved_names_its_own_import(tmp_path):
    """**Was** (an import of agiqa3k-dev whose folder was moved): `genbench score RUN` / `genbench vote
    RUN` said "none of the 30 images … is on disk … import the run again from the folder that holds them
    (`genbench import-imagereward ... --images FOLDER`)" — the other import's command, whose JSON a user of
    AGIQA-3k does not have. Now the run's own import command, with its --out."""
    run = tmp_path / "run"
    res = runner.invoke(app, ["import-agiqa3k", str(agiqa3k_folder(tmp_path / "agiqa")), "-o", str(run)])
    assert res.exit_code == 0, res.output
    shutil.move(tmp_path / "agiqa", tmp_path / "moved")
    for args in (["score", str(run), "-m", "classical"], ["vote", str(run), "--port", "0"]):
        res = runner.invoke(app, args)
        said = _said(
            f"{res.output} {res.exception}"
        )  # (in-process: the app runner's one line is its exception)
        assert res.exit_code != 0 and "none of the 6 images its manifest names is on disk" in said, said
        assert f"`genbench import-agiqa3k FOLDER --out {shell_arg(run)}`" in said, said
        assert "import-imagereward" not in said, said
    res = runner.invoke(app, ["import-agiqa3k", str(tmp_path / "moved"), "-o", str(run)])  # the fix it names
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["score", str(run), "-m", "classical", "-w", "0"])
    assert res.exit_code == 0 and "classical: 6 scored" in _said(res.output), res.output


def test_a_cut_short_pipeline_download_is_one_line_with_the_fix(tmp_path, capfd):
    """**Was** (`genbench run --model sd21` where sd21/unet/ lost its weights: a download cut short):
    diffusers' own "An error occurred while trying to fetch sd21/unet: …" and "Defaulting to unsafe
    serialization. Pass `allow_pickle=False` …" ahead of "error: sd21: cannot load the pipeline (Error no
    file named diffusion_pytorch_model.bin …)" — three lines, no fix. Now the one line, saying to fetch the
    download again."""
    pytest.importorskip("diffusers")
    from genbench_helpers import build_tiny_sd

    from attiqa.errors import ModelLoadError
    from genbench.generate import load_pipeline

    sd = build_tiny_sd(tmp_path / "sd21")
    (sd / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    capfd.readouterr()
    with pytest.raises(ModelLoadError) as err:
        load_pipeline(str(sd))
    said = str(err.value)
    assert said.startswith(f"{sd}: cannot load the pipeline") and "\n" not in said, said
    assert f"--local-dir {sd}` again" in said, said
    out = capfd.readouterr()
    assert not out.out.strip() and not out.err.strip(), out  # diffusers' lines: none


def test_agree_says_which_metric_left_pairs_out_and_how_to_score_them(tmp_path, photos):
    """**Was** (`genbench agree RUN` after `genbench score RUN -m classical` was stopped part-way, or one of
    its images was unreadable; an ExIQA file of NaN scores of an older version): the table's "no scr 2466"
    the only word — the metric's accuracy over other pairs than the others', and nothing said of how to
    score the rest. Now a note per such metric with the count and `genbench score RUN -m NAME`."""
    run = make_photo_run(tmp_path / "run", photos)
    pairs = [line.split(",")[0] for line in (run / "manifest.csv").read_text().splitlines()[1:]]
    prefs = tmp_path / "prefs.csv"
    prefs.write_text("pair_id,choice\n" + "".join(f"{p},a\n" for p in pairs))
    res = runner.invoke(app, ["score", str(run), "-m", "classical", "-w", "0"])
    assert res.exit_code == 0, res.output
    agree = ["agree", str(run), "--prefs", str(prefs), "--bootstrap", "100"]
    res = runner.invoke(app, agree)
    assert res.exit_code == 0 and "left out, an image without its score" not in res.output, res.output
    scores = run / "scores" / "classical.csv"
    lines = scores.read_text().splitlines()
    scores.write_text("\n".join(lines[:-2]) + "\n")  # the last two images unscored: the last pair, at least
    res = runner.invoke(app, agree)
    said = _said(res.output)
    assert res.exit_code == 0, res.output
    assert "note: classical: 1 voted pair left out, an image without its score" in said, said
    assert f"`genbench score {shell_arg(run)} -m classical` scores what it can" in said, said


def test_a_pipeline_folder_of_pickled_weights_is_refused_not_unpickled(tmp_path, capfd):
    """**Was** (`genbench run --model sd21` where sd21/unet/ holds diffusion_pytorch_model.bin, a pickle —
    an older save or a download of the .bin files): diffusers unpickled it without a word, against the
    project's rule that weights are never unpickled. Now one line naming the file and the fix."""
    pytest.importorskip("diffusers")
    import torch
    from genbench_helpers import build_tiny_sd
    from safetensors.torch import load_file

    from attiqa.errors import ModelLoadError
    from genbench.generate import load_pipeline

    sd = build_tiny_sd(tmp_path / "sd21")
    weights = sd / "unet" / "diffusion_pytorch_model.safetensors"
    torch.save(load_file(str(weights)), sd / "unet" / "diffusion_pytorch_model.bin")
    weights.unlink()
    capfd.readouterr()
    with pytest.raises(ModelLoadError) as err:
        load_pipeline(str(sd))
    said = str(err.value)
    assert said.startswith(f"{sd}: unet/diffusion_pytorch_model.bin is pickled weights") and "\n" not in said
    assert "save_pretrained" in said, said
    out = capfd.readouterr()
    assert not out.out.strip() and not out.err.strip(), out
