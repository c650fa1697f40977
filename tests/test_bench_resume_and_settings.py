"""`attiqa bench` (docs/robustness.md): an interrupted protocol, labels and options that could not work, and
the printed table. Every fixture is generated here (real photos of scikit-image, the tiny backbone); each test
failed before its fix."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from helpers import attiqa_cmd, one_line_error, paused_after, run_attiqa, signal_after
from PIL import Image
from typer.testing import CliRunner

from attiqa.cli.app import app
from attiqa.distortions import apply_distortion
from attiqa.errors import AttiqaError

runner = CliRunner()


def _set(folder: Path, photos: dict[str, Image.Image], prompt: str | None = None) -> Path:
    """12 small degraded photos with a MOS falling with the blur level (``mos.csv``), or AGIQA-3k's
    ``data.csv`` with every image under ``prompt``."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for c, img in enumerate(list(photos.values())[:3]):
        small = img.resize((56, round(56 * img.height / img.width)), Image.BICUBIC)
        for lv in range(4):
            name = f"p{c}_{lv}.jpg"
            apply_distortion(small, "gaussian_blur", lv, seed=c).save(folder / name)
            rows.append((name, 4.5 - 0.9 * lv + 0.1 * c))
    if prompt is None:
        (folder / "mos.csv").write_text("image,mos\n" + "".join(f"{n},{m:.2f}\n" for n, m in rows))
    else:
        header = "name,prompt,adj1,adj2,style,mos_quality,std_quality,mos_align,std_align\n"
        body = "".join(f"{n},{prompt},,,,{m:.2f},0.5,{m:.2f},0.5\n" for n, m in rows)
        (folder / "data.csv").write_text(header + body)
    return folder


@pytest.fixture()
def tiny_yaml(tmp_path: Path) -> Path:
    p = tmp_path / "ft.yaml"
    p.write_text(
        "backbone: tiny\npretrained_backbone: false\nhead_hidden: 8\nmos_hidden: 8\nepochs: 2\n"
        "batch_size: 4\nlr: 0.003\nresize_shorter: 40\ncrop_size: 32\nnum_workers: 0\ndevice: cpu\n"
    )
    return p


def _history(run_json: Path) -> list[dict]:
    """Every epoch's loss and test metrics, not its wall time."""
    return [
        {k: v for k, v in h.items() if k != "seconds"} for h in json.loads(run_json.read_text())["history"]
    ]


def test_an_interrupted_bench_says_what_it_kept_and_continues_the_run_cut_short(
    tmp_path, photos, tiny_yaml, cli
):
    """**Was**: Ctrl-C said only "interrupted", and the same command again trained the run it cut short
    from epoch 1 (`finetune(resume=False)`): with the paper's 100 epochs a split's finished epochs were lost
    at every interruption. Now it says how many runs are kept and how to resume, and the run cut short
    continues from its last finished epoch, to the numbers of an uninterrupted run."""
    data = _set(tmp_path / "set", photos)
    out, ref = tmp_path / "bench", tmp_path / "ref"
    args = ["bench", "single", "-d", f"folder={data}", "-c", tiny_yaml, "-n", "1"]
    # a real Ctrl-C as the first epoch's checkpoint card is written
    ctrl_c = signal_after(tmp_path, "replace", "last.json", 1, "SIGINT", "attiqa.cli")
    cut = run_attiqa(*args, "-o", out, **ctrl_c)
    assert cut.returncode == 130, cut.stderr
    said = [ln for ln in cut.stderr.splitlines() if ln.startswith("interrupted")]
    kept = f"interrupted: 0 finished run(s) kept in {out / 'single'}; rerun the same command to resume"
    assert said == [f"{kept} (a run cut short continues from its last finished epoch)"], cut.stderr
    again = run_attiqa(*args, "-o", out)
    assert again.returncode == 0, again.stderr
    assert (
        f"set split00: continuing the run cut short in {out / 'single' / 'set' / 'split00'}" in again.stderr
    )
    assert "finetune epoch 1/2" not in again.stderr and "finetune epoch 2/2" in again.stderr, again.stderr
    assert cli(*args, "-o", ref).returncode == 0  # the uninterrupted run
    run = Path("single") / "set" / "split00" / "run.json"
    assert _history(out / run) == _history(ref / run)


def test_bench_settings_that_cannot_work_are_one_line_before_any_folder_is_made(tmp_path, photos, tiny_yaml):
    """(The one red line they become on the command line is `run_app`'s.) **Was**: a label `../x` put its
    runs outside OUT/single (`../../x` outside OUT); `--fractions ''` trained nothing and wrote an empty
    table (exit 0); `--fractions 0.1,0.1` showed one column twice; a dataset whose images all share one
    prompt said "group-aware split: 1 group(s) — need at least 2 (or split image-wise)" without the dataset
    or the option; `--device cuda` on a machine without CUDA and an `--init` file that is not an ATTIQA
    checkpoint (an isp-tune policy) stopped the first run, leaving OUT/single/LABEL/split00/split.csv. Now
    one line each, and no folder is made."""
    data = _set(tmp_path / "set", photos)
    one_prompt = _set(tmp_path / "agiqa", photos, prompt="a red fox")
    policy = Path(__file__).parents[1] / "isp_env" / "data" / "policy-default.safetensors"
    out = tmp_path / "out" / "bench"
    d = f"folder={data}"
    cases = [
        (["single", "-d", f"../../x:{d}"], "dataset label '../../x': it names the runs' folder "
         "OUT/PROTOCOL/LABEL — give a plain name without '/' or '..' (LABEL:NAME=ROOT, e.g. "
         "clive:folder=/data/clive)"),
        (["data-efficient", "-d", d, "--fractions", ""],
         "data-efficient: no training fraction given — pass e.g. --fractions 0.1,0.2"),
        (["data-efficient", "-d", d, "--fractions", "0.5,0.5"], "data-efficient: fractions 0.5 and 0.5 "
         "both read 50% (one table column, one run folder) — give each fraction once"),
        (["single", "-d", f"agiqa3k={one_prompt}"], f"AGIQA-3K ({one_prompt}): all 12 items share one "
         "'prompt' ('a red fox') — a group-aware split needs at least 2 groups; use --group-by none for "
         "image-wise splits"),
        (["single", "-d", d, "--init", policy], f"{policy}: checkpoint has no ATTIQA model card"),
    ]  # fmt: skip
    import torch

    if not torch.cuda.is_available():
        cases.append((["single", "-d", d, "--device", "cuda"], "device 'cuda' requested but CUDA is not"))
    for args, line in cases:
        res = runner.invoke(app, ["bench", *map(str, args), "-c", str(tiny_yaml), "-n", "1", "-o", str(out)])
        assert isinstance(res.exception, AttiqaError) and line in str(res.exception), (args, res.output)
        assert not (tmp_path / "out").exists() and not (tmp_path / "x").exists(), args


def test_the_printed_table_is_the_markdown_written_with_a_bar_in_a_name(tmp_path, photos, tiny_yaml):
    """**Was**: the table printed to stdout went through rich: lines wrapped at the terminal's width (80
    columns in a pipe: a table row or the note split in two), a `[bold]` in `--method` read as markup, and a
    `|` in the method or a label ended its cell in `single.md` (one column too many). Now printed as
    written, and a `|` in a cell is escaped (`\\|`)."""
    data = _set(tmp_path / "set", photos)
    out = tmp_path / "bench"
    method = "[bold]tiny|random init, a name long enough to pass the eighty columns of a pipe"
    args = ["single", "-d", f"my|set:folder={data}", "-c", str(tiny_yaml), "-n", "1", "--epochs", "1"]
    res = runner.invoke(app, ["bench", *args, "-q", "--method", method, "-o", str(out)])
    assert res.exit_code == 0, res.output
    md = (out / "single.md").read_text()
    assert md.strip() in res.stdout
    row = next(ln for ln in md.splitlines() if ln.startswith("| [bold]"))
    assert row.startswith("| [bold]tiny\\|random init, a name long enough") and row.count(" | ") == 2
    assert "| my\\|set |  |" in md


def test_a_read_only_bench_folder_says_chmod_to_resume_it(tmp_path):
    """**Was**: "OUT: not writable (permission denied) — choose another --out" for a folder holding finished
    runs (another --out trains them all again); now the chmod that resumes them comes first, as `score`
    and `isp-tune` say for their outputs (`attiqa.io.atomic.resume_fix`)."""
    data = tmp_path / "set"
    data.mkdir()
    Image.new("RGB", (40, 40), (90, 120, 150)).save(data / "a.png")
    Image.new("RGB", (40, 40), (20, 30, 40)).save(data / "b.png")
    with open(data / "mos.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["image", "mos"], ["a.png", "3"], ["b.png", "1"]])
    out = tmp_path / "bench"
    (out / "single").mkdir(parents=True)
    (out / "single.md").write_text("## Table 2 — single\n")
    os.chmod(out, 0o555)
    try:
        res = run_attiqa("bench", "single", "-d", f"folder={data}", "-o", out, unprivileged=True)
    finally:
        os.chmod(out, 0o755)
    assert res.returncode == 2, res.stderr
    chmod = f"make it writable (chmod -R u+w {out}) to resume its finished runs, or choose another --out"
    assert f"error: {out}: not writable (permission denied) — {chmod}" in res.stderr


def test_init_takes_a_named_model_and_unused_split_settings_are_said(tmp_path, photos, tiny_yaml):
    """**Was**: `--init attiqa-default` (fine-tune the shipped model on one's own set) was "attiqa-default:
    initial checkpoint not found" though `attiqa export` takes the name; and a base config's `val_fraction`
    / `split_seed` were dropped without a word (the protocol makes its own 80/20 splits). Now a named model
    is its shipped file, a misspelt one gets the names, and the unused settings are said. **Was** (session
    61): the shipped model's backbone trained, the config's (`tiny`) dropped without a word; now said (as
    `attiqa train` trains its `pretrained_checkpoint` as it is)."""
    data = _set(tmp_path / "set", photos)
    tiny_yaml.write_text(tiny_yaml.read_text() + "val_fraction: 0.5\n")
    out = tmp_path / "bench"
    args = ["bench", "single", "-d", f"folder={data}", "-c", str(tiny_yaml), "-n", "1", "--epochs", "1", "-q"]
    typo = runner.invoke(app, [*args, "--init", "attiqa-defualt", "-o", str(out)])
    assert "unknown model name 'attiqa-defualt' (did you mean 'attiqa-default'" in str(typo.exception)
    res = runner.invoke(app, [*args, "--init", "attiqa-default", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "base config val_fraction: 0.5: not used — the protocol makes its own splits" in res.output
    shipped = Path(json.loads((out / "single.json").read_text())["init_checkpoint"])
    assert (
        f"finetune: the network of {shipped} (backbone efficientnet_lite0_ms, its card) is fine-tuned as it "
        "is; the config's backbone tiny is used only without a pretrained checkpoint"
    ) in " ".join(res.output.split())
    doc = json.loads((out / "single.json").read_text())
    assert doc["method"] == "ATTIQA" and doc["init_checkpoint"].endswith("attiqa-default.safetensors")
    assert doc["runs"][0]["n_test"] == 2  # 80/20 of 12 images, not the config's 50 %


def test_configs_bench_cannot_use_are_one_line_before_any_folder_is_made(tmp_path, photos):
    """**Was**: `-c configs/ablations/l2.yaml` (a run config for `attiqa train`, no finetune: section) was
    "unknown key 'out_dir'; valid keys: …"; `-c configs/paper_resnet50.yaml` offline (ImageNet weights that
    cannot be downloaded; here: a `backbone_weights` file that is not weights) stopped the first run,
    leaving OUT/single/LABEL/split00/split.csv. Now one line each, before any folder is made."""
    data = _set(tmp_path / "set", photos)
    bad = tmp_path / "not_weights.safetensors"
    bad.write_text("not weights")
    weights = tmp_path / "weights.yaml"
    weights.write_text(f"backbone: efficientnet_lite0\nbackbone_weights: {bad}\nepochs: 1\nnum_workers: 0\n")
    ablation = Path(__file__).parents[1] / "configs" / "ablations" / "l2.yaml"
    out = tmp_path / "out"
    for cfg, line in (
        (weights, f"{bad}: cannot read backbone weights"),
        (ablation, f"{ablation}: a run config (labels, out_dir, pretrain) without a finetune: section — "
         "bench fine-tunes with a finetune: section's settings (e.g. -c configs/default_model.yaml) or those "
         "keys alone"),
    ):  # fmt: skip
        res = runner.invoke(app, ["bench", "single", "-d", f"folder={data}", "-c", str(cfg), "-o", str(out)])
        assert isinstance(res.exception, AttiqaError) and line in str(res.exception), res.output
        assert not out.exists()


def test_a_second_bench_into_an_out_being_written_is_one_line(tmp_path, photos, tiny_yaml, cli):
    """**Was**: `attiqa bench --out` was not held: two benches into one folder trained and wrote each other's
    runs and tables. Now --out is held from before run_protocol's first write (a new one made for it) to its
    last: the second is one line, the folder as the first writes it; the first ends as alone."""
    data = _set(tmp_path / "set", photos)
    out = tmp_path / "bench"
    args = ["bench", "single", "-d", f"folder={data}", "-c", tiny_yaml, "-n", "1", "--epochs", "1", "-q"]
    with paused_after(tmp_path, "attiqa.protocols:_single", attiqa_cmd(*args, "-o", out)):
        assert (out / ".attiqa.lock").read_bytes() == b"benchmarking in; attiqa bench"
        before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
        second = cli(*args, "-o", out)
        busy = "another process is benchmarking in it now (the same command still running?) — let it finish "
        busy += "(rerunning it then resumes what it left), or choose another --out"
        assert one_line_error(second) == f"error: {out}: {busy}"
        assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert (out / "single.md").is_file() and not (out / ".attiqa.lock").exists()
