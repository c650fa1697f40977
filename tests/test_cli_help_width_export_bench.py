"""Every command's --help whole at 80 columns (one mechanism in attiqa.cli.run_app for attiqa, genbench and
isp-tune)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import attiqa_env

_EVERY_HELP = """
import contextlib, io, json, sys
import click, typer.main
from attiqa.cli import run_app
from {module} import app

def paths(cmd, prefix):
    yield prefix
    for name, sub in getattr(cmd, "commands", {{}}).items():
        yield from paths(sub, [*prefix, name])

out = []
for path in list(paths(typer.main.get_command(app), [])):
    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    opts = [o for p in cmd.params for o in [*p.opts, *p.secondary_opts] if o.startswith("--")]
    buf = io.StringIO()
    sys.argv = ["{name}", *path, "--help"]
    with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
        run_app(app)
    out.append([" ".join(path), opts, buf.getvalue()])
print(json.dumps(out))
"""


@pytest.mark.parametrize(
    ("name", "module"),
    [("attiqa", "attiqa.cli.app"), ("genbench", "genbench.cli"), ("isp-tune", "isp_env.cli")],
)
def test_every_commands_help_at_80_columns_keeps_option_names_whole(name, module):
    """**Was** `attiqa bench --help` at 80 columns (a narrow terminal, a pipe, a log) cutting
    "--keep-checkpoin…" in rich's option panel (isp-tune alone had click's plain layout); now every command of
    the three command lines, through the real run_app at COLUMNS=80: every long option name whole, no line
    over 80, no "…", and no rich markup left in the plain text ("[bold]mos[/]" of `attiqa score`)."""
    res = subprocess.run(
        [sys.executable, "-c", _EVERY_HELP.format(module=module, name=name)],
        env=attiqa_env({"COLUMNS": "80"}), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    helps = json.loads(res.stdout)
    assert len(helps) > 1
    for path, opts, text in helps:
        assert text.startswith("Usage:"), (path, text[:200])
        assert max(map(len, text.splitlines())) <= 80 and "…" not in text, path
        assert "[/" not in text and "[bold" not in text, path
        words = text.replace(",", " ").split()
        for opt in opts:
            assert opt in words, (path, opt)


def test_export_replaces_an_earlier_export_and_refuses_any_other_file(tmp_path, cli):
    """**Was** `attiqa export SRC DST` writing over whatever DST held without a word — a training checkpoint
    (its full-precision weights and resume state) or a file of the user's. Now an earlier export (its card
    says what it was exported from; the same command makes it again) is replaced with one line, as eval's
    outputs are; any other file there is one line, before the work, and left as it was."""
    from helpers import tiny_attiqa_checkpoint

    from attiqa.io.checkpoints import read_card
    from attiqa.io.hashes import sha256_of

    src = tiny_attiqa_checkpoint(tmp_path)
    dst = tmp_path / "copy.safetensors"
    first = cli("export", src, dst, "--name", "one")
    assert first.returncode == 0 and "replacing" not in first.stderr, first.stderr
    again = cli("export", src, dst, "--name", "two")
    assert again.returncode == 0, again.stderr
    said = again.stderr.replace("\n", " ")
    assert f"{dst}: replacing an earlier export (of " in said and f"{src.name})" in said, said
    assert read_card(dst)["name"] == "two"
    trained = tmp_path / "trained.safetensors"
    trained.write_bytes(src.read_bytes())
    other = tmp_path / "notes.safetensors"
    other.write_text("mine")
    for kept in (trained, other):
        before = sha256_of(kept)
        res = cli("export", src, kept)
        assert res.returncode == 2, res.stdout
        assert res.stderr.startswith(f"error: {kept}: already there and not an earlier `attiqa export`")
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert sha256_of(kept) == before


def test_make_distorted_says_a_max_k_beyond_the_distortion_set(tmp_path, photos, cli):
    """**Was** `attiqa make-distorted … --distortions gaussian_blur,contrast --max-k 5` capping K at 2
    without a word (the user asked for up to 5 distortions an image). Now one line saying K is drawn from
    1..2; the images are those of the default (K up to |D|), and --max-k 2 says nothing."""
    from conftest import photo_folder

    photo_folder(tmp_path / "photos", photos, n=2, side=40)
    args = ("--rounds", "2", "--distortions", "gaussian_blur,contrast")
    capped = cli("make-distorted", tmp_path / "photos", "-o", tmp_path / "a", *args, "--max-k", "5")
    assert capped.returncode == 0, capped.stderr
    said = " ".join(capped.stderr.split())
    assert "--max-k 5: more than the 2 distortions of D — K is drawn from 1..2" in said, said
    plain = cli("make-distorted", tmp_path / "photos", "-o", tmp_path / "b", *args, "--max-k", "2")
    assert plain.returncode == 0 and "--max-k" not in plain.stderr, plain.stderr

    def images(out):
        return {p.relative_to(out): p.read_bytes() for p in (out / "images").rglob("*.png")}

    assert images(tmp_path / "a") == images(tmp_path / "b") and len(images(tmp_path / "a")) == 4


def test_bench_on_a_tiny_dataset_warns_that_its_median_says_little(tmp_path, photos, cli):
    """**Was** `attiqa bench single` on 8 images benched without a word: every split held out 2 images (an
    SROCC of ±1 only), and seeds could draw the same 2 (seeds 0..9, the default: two of them; seeds 8 and
    9, here, to keep the test short), so the median counted one split twice. Now, before the runs, one line
    with the held-out count and one naming the splits that hold out the same images; the runs still go (a
    tiny set tries a config out in minutes)."""
    from conftest import photo_folder
    from PIL import Image

    from attiqa.bench_splits import random_splits

    root = photo_folder(tmp_path / "tiny", photos, n=4, side=40)
    for p in list(root.iterdir()):
        Image.open(p).rotate(90).save(p.with_name(f"r_{p.name}"))
    names = sorted(p.name for p in root.iterdir())
    (root / "mos.csv").write_text("image,mos\n" + "".join(f"{n},{10 + 9 * i}\n" for i, n in enumerate(names)))
    same = {}
    for sp in random_splits(len(names), 2, 8):
        same.setdefault(frozenset(sp.test), []).append(sp.name)
    repeated = [v for v in same.values() if len(v) > 1]
    assert repeated  # the draw this test is about: seeds 8 and 9 of 8 images meet
    cfg = tmp_path / "ft.yaml"
    cfg.write_text(
        "finetune:\n  backbone: tiny\n  pretrained_backbone: false\n  num_workers: 0\n  device: cpu\n"
    )
    args = ("-c", cfg, "-o", tmp_path / "b", "--epochs", "1", "-q", "--seed", "8", "-n", "2")
    res = cli("bench", "single", "-d", f"folder={root}", *args)
    assert res.returncode == 0, res.stderr
    said = " ".join(res.stderr.split())
    assert "tiny: a split of its 8 images holds out 2 — an SROCC on so few is only ±1" in said, said
    for names_ in repeated:
        assert f"tiny: splits {', '.join(names_)} hold out the same images" in said, said
    assert (tmp_path / "b" / "single.md").exists()
