"""Session 47's pass over the training side (docs/robustness.md): `attiqa bench`'s starting network, `attiqa
train` under torchrun (gloo), the protocols' options and the AGIQA-3k adapter's columns. Every fixture is
generated here (real photos of scikit-image, the tiny backbone); each test failed before its fix."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import tiny_attiqa_checkpoint, write_mos_set
from typer.testing import CliRunner

from attiqa.cli.app import app
from attiqa.errors import AttiqaError

runner = CliRunner()


def _refused(args: list[str]) -> str:
    """The one line a command stops with (the app runner prints it as `error: …`, exit 2)."""
    res = runner.invoke(app, [str(a) for a in args])
    assert isinstance(res.exception, AttiqaError), res.output
    said = str(res.exception)
    assert "\n" not in said
    return said


@contextmanager
def _calls(*funcs: Callable) -> Iterator[Counter]:
    """How many times each of the real ``funcs`` runs inside the block (a profile hook sees each call of its
    code, however the caller imported it; nothing is replaced)."""
    codes = {f.__code__: f.__name__ for f in funcs}
    seen: Counter = Counter()

    def hook(frame, event, arg):  # noqa: ANN001, ANN202 - sys.setprofile's signature
        if event == "call" and frame.f_code in codes:
            seen[codes[frame.f_code]] += 1

    sys.setprofile(hook)
    try:
        yield seen
    finally:
        sys.setprofile(None)


def _history(record: dict) -> list[dict]:
    return [{k: v for k, v in h.items() if k != "seconds"} for h in record["history"]]


def test_bench_reads_the_init_checkpoint_or_the_backbone_weights_once(tmp_path, photos):
    """**Was**: the up-front check loaded the `--init` checkpoint (or built the backbone with its ImageNet
    weights), then every split's fine-tuning loaded it again — a ResNet-50's 100 MB per split. Now it is
    built once and each split trains a copy, to the numbers of a run that builds its own."""
    import torch
    from safetensors.torch import save_file

    from attiqa.datasets import get_dataset
    from attiqa.io.checkpoints import load_checkpoint
    from attiqa.models import create_backbone
    from attiqa.models.backbones import read_weights_file
    from attiqa.protocols import (
        bench_dataset,
        load_base_config,
        random_splits,
        run_finetune_split,
        run_protocol,
    )

    data = write_mos_set(tmp_path / "set", dict(list(photos.items())[:3]), split_column=False, shorter=48)
    weights = tmp_path / "tiny_backbone.safetensors"
    torch.manual_seed(3)
    save_file({k: v.contiguous() for k, v in create_backbone("tiny").body.state_dict().items()}, str(weights))
    base = {"backbone": "tiny", "head_hidden": 16, "mos_hidden": 8, "epochs": 1, "batch_size": 8, "lr": 3e-3,
            "resize_shorter": 40, "crop_size": 32, "num_workers": 0, "device": "cpu"}  # fmt: skip
    ckpt = tiny_attiqa_checkpoint(tmp_path)
    for init, cfg, read in (
        (ckpt, {**base, "pretrained_backbone": False}, "load_checkpoint"),
        (None, {**base, "backbone_weights": str(weights)}, "read_weights_file"),
    ):
        ds = get_dataset("folder", data.parent)
        out = tmp_path / f"bench_{read}"
        with _calls(load_checkpoint, read_weights_file) as seen:
            res = run_protocol("single", [ds], cfg, out, init_checkpoint=init, repeats=2)
        assert dict(seen) == {read: 1}, seen
        # the numbers of each split fine-tuned from a network it built itself (as before)
        for split, rec in zip(random_splits(len(ds), 2, 0), res.runs, strict=True):
            assert split.name == rec["split"]
            own = run_finetune_split(bench_dataset(ds), split, load_base_config(cfg), init,
                                     tmp_path / f"own_{read}_{split.name}", "last", False, False)  # fmt: skip
            assert _history(own) == _history(rec)


def _photos_with_scores(folder: Path, photos: dict, n: int = 12) -> list[tuple[str, float]]:
    """``n`` small blurred photos in ``folder``, each with a score falling with its blur level."""
    from attiqa.distortions import apply_distortion

    folder.mkdir(parents=True, exist_ok=True)
    srcs, rows = list(photos.values()), []
    for i in range(n):
        img = srcs[i % len(srcs)]
        small = img.resize((56, round(56 * img.height / img.width)))
        apply_distortion(small, "gaussian_blur", i % 4, seed=i).save(folder / f"g{i:02d}.jpg")
        rows.append((f"g{i:02d}.jpg", 4.5 - 0.9 * (i % 4) + 0.05 * i))
    return rows


def test_bench_fractions_outside_data_efficient_are_refused(tmp_path, photos):
    """**Was**: `attiqa bench single … --fractions 0.5` ran 80/20 splits without a word (fractions mean
    something only to data-efficient). Now one line before any folder is made."""
    rows = _photos_with_scores(tmp_path / "set", photos)
    (tmp_path / "set" / "mos.csv").write_text("image,mos\n" + "".join(f"{n},{m:.2f}\n" for n, m in rows))
    cfg = tmp_path / "ft.yaml"
    cfg.write_text("backbone: tiny\npretrained_backbone: false\nepochs: 1\nbatch_size: 4\n"
                   "resize_shorter: 40\n"
                   "crop_size: 32\nnum_workers: 0\ndevice: cpu\n")  # fmt: skip
    out = tmp_path / "bench"
    for protocol in ("single", "linear-probe"):
        said = _refused(["bench", protocol, "-d", f"folder={tmp_path / 'set'}", "-c", cfg, "-n", "1",
                         "--fractions", "0.5", "-o", out])  # fmt: skip
        assert said == (
            f"--fractions 0.5: only the data-efficient protocol trains on fractions of the data ({protocol} "
            "makes 80/20 splits, or takes the dataset's official one) — drop --fractions, or run attiqa "
            "bench data-efficient"
        )
    assert not out.exists()


def test_agiqa3k_needs_only_the_target_column(tmp_path, photos):
    """**Was**: `attiqa eval agiqa3k --target mos_align` on a data.csv holding `mos_align` alone: "missing
    column 'mos_quality' … is this the official score file?" (every target's column was required). Now only
    the chosen target's; without --target the error says which target the file holds. SPAQ's reader (MOS
    and five attribute columns) took the same rule: a file of MOS alone is read."""
    import json

    from attiqa.datasets import get_dataset

    root = tmp_path / "agiqa"
    rows = _photos_with_scores(root, photos)
    (root / "data.csv").write_text(
        "name,prompt,mos_align\n" + "".join(f"{n},prompt {i % 3},{m:.2f}\n" for i, (n, m) in enumerate(rows))
    )
    res = runner.invoke(app, ["eval", "agiqa3k", "--root", str(root), "--target", "mos_align", "-m",
                              "classical", "-o", str(tmp_path / "ev")])  # fmt: skip
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert summary["target"] == "mos_align" and summary["n"] == 12
    said = _refused(["eval", "agiqa3k", "--root", root, "-m", "classical", "-o", tmp_path / "ev2"])
    assert said == (
        f"{root / 'data.csv'}: no 'mos_quality' column for target 'mos_quality' (found: name, prompt, "
        "mos_align) — it holds mos_align: pass --target mos_align"
    )
    (root / "data.csv").write_text("name,prompt\n" + "".join(f"{n},p\n" for n, _ in rows))
    with pytest.raises(AttiqaError, match="missing column 'mos_quality' .found: name, prompt. — is this the"):
        len(get_dataset("agiqa3k", root))
    spaq = tmp_path / "spaq"
    _photos_with_scores(spaq / "TestImage", photos, n=6)
    (spaq / "Annotations").mkdir()
    (spaq / "Annotations" / "MOS and Image attribute scores.csv").write_text(
        "Image name,MOS\n" + "".join(f"g{i:02d}.jpg,{10 * i + 5}\n" for i in range(6))
    )
    assert [it.mos for it in get_dataset("spaq", spaq).items] == [10.0 * i + 5 for i in range(6)]
