"""Bad input said in one line (docs/robustness.md): a key set twice in a config, a device the machine lacks, a
folder or a link loop where a file belongs, an option-like file name, an output path without extension. Each
is one line naming the thing and the fix; each test failed before its fix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from attiqa.errors import AttiqaError, ConfigError

runner = CliRunner()


def test_a_key_set_twice_in_a_config_is_refused_naming_the_line(tmp_path):
    from attiqa.cli.app import app

    cfg = tmp_path / "dup.yaml"
    cfg.write_text("out_dir: runs/x\nfinetune:\n  csv: mos.csv\n  lr: 0.1\n  epochs: 2\n  lr: 0.2\n")
    result = runner.invoke(app, ["train", "--config", str(cfg)])
    assert isinstance(result.exception, ConfigError), result.output
    assert str(result.exception) == f"{cfg}: line 6: key 'lr' is set twice in one section — keep one of them"
    cfg.write_text("finetune: {csv: mos.csv}\nout_dir: a\nout_dir: b\n")  # at the top of the file too
    result = runner.invoke(app, ["train", "--config", str(cfg)])
    assert isinstance(result.exception, ConfigError) and "line 3: key 'out_dir' is set twice" in str(
        result.exception
    )


@pytest.mark.skipif(torch.cuda.is_available() or torch.backends.mps.is_available(), reason="a CPU machine")
@pytest.mark.parametrize("spec", ["cuda:3", "cuda:0", "mps", "xpu"])
def test_a_device_this_machine_lacks_is_one_line_before_the_model_loads(tmp_path, spec):
    from attiqa.cli.app import app

    Image.new("RGB", (64, 64), (90, 120, 150)).save(tmp_path / "a.png")
    result = runner.invoke(app, ["score", str(tmp_path / "a.png"), "--device", spec])
    assert isinstance(result.exception, ConfigError), result.output
    assert str(result.exception).startswith(f"device {spec!r}: ") and "— use auto or cpu" in str(
        result.exception
    )


@pytest.mark.filterwarnings("ignore:'mkldnn' is no longer used")  # still parsed: still listed
def test_the_device_types_checked_without_torch_are_the_installed_torchs_own():
    """`attiqa.device_names` keeps torch's device types as a list, to say `--device gpu` before torch loads: a
    torch that adds a type (as 2.x added maia and mtia) would have it refused as "unknown device" by us. Every
    listed type is parsed by this torch, and torch's own list (in its error, "Expected one of ...") has
    nothing the list lacks — a torch upgrade that adds one fails here, not in a user's hands."""
    import re

    from attiqa.device_names import DEVICE_TYPES

    for kind in DEVICE_TYPES:
        assert torch.device(f"{kind}:0").type == kind
    with pytest.raises(RuntimeError) as refused:
        torch.device("gpu")
    said = re.search(r"Expected one of (.+) device type", str(refused.value))
    assert said is not None, f"torch's error changed: {refused.value}"
    assert set(said.group(1).split(", ")) - DEVICE_TYPES == set()


def test_a_device_named_by_an_out_of_tree_backend_is_left_to_torch(tmp_path):
    """**Was** (review of session 65): with an out-of-tree backend installed (torch_npu: torch loads it as it
    starts and it takes the place of privateuseone as "npu"), `--device npu` was refused by the torch-free
    check as "unknown device 'npu'", though torch takes it (before that check it ran). Now a value outside
    the list is refused early only when torch has no such backend to load; with one, torch judges it."""
    import subprocess
    import sys

    from helpers import attiqa_env

    (tmp_path / "fakenpu.py").write_text(
        "def autoload():\n    import torch\n    torch.utils.rename_privateuse1_backend('npu')\n"
    )
    dist = tmp_path / "fakenpu-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakenpu\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[torch.backends]\nfakenpu = fakenpu:autoload\n")
    check = "import torch\nfrom attiqa.device_names import check_device_form\n"
    check += (
        "assert torch.device('npu:0').type == 'npu'\ncheck_device_form('npu:0')\ncheck_device_form('npu')\n"
    )
    env = attiqa_env({"TORCH_DEVICE_BACKEND_AUTOLOAD": "1"})
    env["PYTHONPATH"] += f"{os.pathsep}{tmp_path}"
    res = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    from attiqa.device_names import check_device_form  # without the backend: refused before torch, as before

    with pytest.raises(ConfigError, match="unknown device 'npu'"):
        check_device_form("npu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CPU machine")
def test_a_training_stage_on_a_missing_gpu_is_refused_before_the_first_stage(tmp_path):
    from attiqa.cli.app import app

    Image.new("RGB", (64, 64), (90, 120, 150)).save(tmp_path / "a.png")
    (tmp_path / "mos.csv").write_text("image,mos\na.png,3\n")
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"out_dir: {tmp_path / 'run'}\nmodel: {{backbone: tiny, pretrained_backbone: false}}\n"
        f"label: {{images: [{tmp_path / 'a.png'}]}}\n"
        f"finetune: {{csv: {tmp_path / 'mos.csv'}, device: 'cuda:1'}}\n"
    )
    result = runner.invoke(app, ["train", "--config", str(cfg)])
    assert isinstance(result.exception, ConfigError), result.output
    assert str(result.exception).startswith("finetune.device: device 'cuda:1': CUDA is not available")
    assert not (tmp_path / "run").exists()  # the label stage never ran


@pytest.mark.parametrize(
    "stage, key",
    [("finetune: {csv: FOLDER}", "finetune.csv"), ("labels: FOLDER\npretrain: {epochs: 1}", "labels")],
)
def test_train_given_a_folder_for_the_mos_csv_or_the_label_file_says_so(tmp_path, stage, key):
    from attiqa.cli.app import app

    folder = tmp_path / "mos.csv"  # a folder named like the file (an unzipped archive, a tab completion)
    folder.mkdir()
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"out_dir: {tmp_path / 'run'}\nmodel: {{backbone: tiny}}\n" + stage.replace("FOLDER", str(folder))
    )
    result = runner.invoke(app, ["train", "--config", str(cfg)])
    assert isinstance(result.exception, ConfigError), result.output
    assert str(result.exception) == (
        f"{cfg}: {key}: {folder} is a folder, not a file — point it at the file in it "
        f"(in the config or with --set {key}=PATH)"
    )


@pytest.mark.parametrize("named", [False, True])
def test_a_symlink_loop_is_skipped_as_a_loop_with_the_fix(tmp_path, named):
    from attiqa.cli.app import app

    d = tmp_path / "photos"
    d.mkdir()
    Image.new("RGB", (64, 64), (90, 120, 150)).save(d / "good.png")
    (d / "a.png").symlink_to("a.png")  # a link to itself
    (d / "b.png").symlink_to("c.png")  # and through another link
    (d / "c.png").symlink_to("b.png")
    inputs = [str(d / n) for n in ("good.png", "a.png", "b.png")] if named else [str(d)]
    result = runner.invoke(app, ["score", *inputs, "--model", "classical", "--workers", "0"])
    assert result.exit_code == 0, result.output
    fix = "symlink loop (the link points back to itself) — point the link at the real file or folder"
    assert f"{d / 'a.png'}: {fix}" in result.output and f"{d / 'b.png'}: {fix}" in result.output
    assert "disk or network share" not in result.output  # was: "cannot read the file (Too many levels …)"


def test_isp_tune_lists_a_raw_that_is_a_symlink_loop_and_names_a_looping_raw_dir(tmp_path, isp_raws):
    import json

    from helpers import quick_isp_tune

    from isp_env.cli import app

    raw_dir, out, args = quick_isp_tune(tmp_path, isp_raws)
    (raw_dir / "loop.dng").symlink_to("loop.dng")
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    skipped = json.loads((out / "summary.json").read_text())["skipped"]
    loop = "symlink loop (the link points back to itself) — point the link at the real file or folder"
    assert list(skipped) == [str(raw_dir / "loop.dng")] and skipped[str(raw_dir / "loop.dng")].startswith(
        f"{raw_dir / 'loop.dng'}: {loop}"
    )  # was: "LibRaw can't read it (LibRawIOError / TooBigError …)"

    r = runner.invoke(app, ["render", str(raw_dir / "loop.dng"), "-o", str(tmp_path / "r.png")])
    assert isinstance(r.exception, AttiqaError) and str(r.exception).startswith(  # was: "file not found"
        f"{raw_dir / 'loop.dng'}: {loop}"
    ), r.output
    (tmp_path / "raws2").symlink_to("raws2")
    r = runner.invoke(app, ["--raw-dir", str(tmp_path / "raws2"), "--out", str(tmp_path / "run2")])
    assert isinstance(r.exception, ConfigError), r.output
    assert str(r.exception).startswith(f"{tmp_path / 'raws2'}: {loop}")  # was: "not a folder"


def test_a_file_named_like_an_option_gets_told_how_to_pass_it(tmp_path):
    from helpers import run_attiqa

    Image.new("RGB", (64, 64), (90, 120, 150)).save(tmp_path / "-x.png")
    hint = "score: -x.png: a name starting with '-' reads as an option — if it is a file, pass it after -- "
    for args in (["score", "-x.png"], ["score", "--model", "classical", "-x.png"]):
        r = run_attiqa(*args, cwd=tmp_path, env={"COLUMNS": "200"})
        assert r.returncode == 2 and r.stderr.startswith("error: ") and hint in r.stderr, r.stderr
        assert len(r.stderr.splitlines()) == 1, r.stderr  # session 53: one line, the hint its fix
        assert "`-- -x.png`) or as ./-x.png" in r.stderr
    r = run_attiqa("score", "--model", "classical", "--workers", "0", "--", "-x.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr  # the way the hint says works
    r = run_attiqa("score", "--bogus", cwd=tmp_path)
    assert r.returncode == 2 and "reads as an option" not in r.stderr  # no file name: "no such option" alone


def test_an_output_that_is_a_dangling_link_is_one_line_before_the_work(tmp_path):
    from attiqa.cli.app import app

    Image.new("RGB", (64, 64), (90, 120, 150)).save(tmp_path / "a.png")
    (tmp_path / "s.csv").symlink_to(tmp_path / "gone.csv")  # was: written through, gone.csv made
    (tmp_path / "t.csv").symlink_to(tmp_path / "no" / "t.csv")  # was: "No such file or directory — check…"
    (tmp_path / "u.csv").symlink_to("u.csv")
    (tmp_path / "sheet.png").symlink_to("gone.png")
    for option, name, why in (
        ("-o", "s.csv", f"a broken link (to {tmp_path / 'gone.csv'}, which is not there)"),
        ("-o", "t.csv", f"a broken link (to {tmp_path / 'no' / 't.csv'}, which is not there)"),
        ("-o", "u.csv", "a symlink loop (the link points back to itself)"),
        ("--sheet", "sheet.png", "a broken link (to gone.png, which is not there)"),
    ):
        args = [
            "score",
            str(tmp_path / "a.png"),
            "-m",
            "classical",
            "--workers",
            "0",
            option,
            str(tmp_path / name),
        ]
        r = runner.invoke(app, args)
        assert isinstance(r.exception, AttiqaError), r.output
        named = "--out" if option == "-o" else option
        assert str(r.exception) == f"{tmp_path / name}: {why} — delete the link or give {named} another name"
    assert not (tmp_path / "gone.csv").exists() and not (tmp_path / "gone.png").exists()
    r = runner.invoke(
        app, ["score", str(tmp_path / "a.png"), "-m", "classical", "-o", str(tmp_path / "scores")]
    )
    assert f"e.g. {tmp_path / 'scores'}.csv (or" in str(r.exception)  # a file meant: its name with .csv


def _tiny_bench_set(root: Path, prompts: list[str]) -> Path:
    root.mkdir()
    rows = ["image,mos,prompt"]
    for i, prompt in enumerate(prompts):
        Image.new("RGB", (48, 48), (20 * i, 100, 200 - 20 * i)).save(root / f"i{i}.png")
        rows.append(f"i{i}.png,{i + 1},{prompt}")
    (root / "mos.csv").write_text("\n".join(rows) + "\n")
    return root / "mos.csv"


def test_bench_refuses_a_split_with_too_few_images_on_a_side_before_any_training(tmp_path):
    from attiqa.cli.app import app

    cfg = tmp_path / "ft.yaml"
    cfg.write_text(
        "model: {backbone: tiny, pretrained_backbone: false, head_hidden: 8}\nfinetune: {epochs: 1, "
        "batch_size: 4, resize_shorter: 40, crop_size: 32, num_workers: 0, device: cpu, mos_hidden: 8}\n"
    )
    six = _tiny_bench_set(tmp_path / "six", ["a", "a", "b", "b", "c", "c"])
    out = tmp_path / "bench"
    r = runner.invoke(
        app, ["bench", "single", "-d", f"folder={six}", "-c", str(cfg), "-o", str(out), "-n", "2"]
    )
    assert isinstance(r.exception, AttiqaError), (
        r.output
    )  # was: "held-out SROCC is NaN … lower the learning rate"
    assert str(r.exception) == (
        f"six ({six.parent}): split split00 (random, seed 0) of its 6 images gives 5 to train on and 1 to "
        "test on — fine-tuning needs at least 2 on each side (add images)"
    )
    assert not (out / "single").exists()  # refused before the first run

    # grouped: four groups, two of one image each: some split holds out a single image
    uneven = _tiny_bench_set(tmp_path / "uneven", ["a", "a", "a", "a", "b", "b", "c", "d"])
    args = ["bench", "single", "-d", f"folder={uneven}", "-c", str(cfg), "-o", str(out), "-n", "5"]
    r = runner.invoke(app, [*args, "--group-by", "prompt"])
    assert isinstance(r.exception, AttiqaError), r.output
    assert "to test on — fine-tuning needs at least 2 on each side (add images, or split image-wise " in str(
        r.exception
    ) and "(--group-by none): its 4 groups are too few or too uneven)" in str(r.exception)
    assert not (out / "single").exists()
