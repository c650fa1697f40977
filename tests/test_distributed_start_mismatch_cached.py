"""Cached pretraining under torchrun whose processes read different label tables or images at the start (a
node whose copy lacks them) — the line said by the process that met it, once when all did. Real torchrun, 2
processes, gloo; each process in its own folder, as if on another machine."""

from __future__ import annotations

import pytest
from dist_helpers import CACHED_PRETRAIN, equal_columns, labelled, per_rank_run


def refused_by_rank_1_alone(tmp_path, stage: str, start: str) -> None:
    """`train -c run.yaml` on the two machines: one line, rank 1's, starting ``start``; no process trained
    ``stage``."""
    res, ours, errors = per_rank_run(tmp_path, "train", "-c", "run.yaml")
    assert res.returncode != 0, res.stderr[-3000:]
    assert len(errors) == 1 and errors[0].startswith(f"error: rank 1 of 2: {start}"), res.stderr[-3000:]
    assert "Traceback" not in ours, ours
    assert not (tmp_path / "rank0" / "run" / stage / "last.safetensors").exists()


@pytest.mark.slow
@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_too_few_readable_images_for_cached_pretraining_on_rank_1_alone_is_said_by_rank_1(tmp_path, photos):
    """`torchrun --nproc_per_node 2 -m attiqa.cli train -c run.yaml` (pretrain.feature_cache: true) where 1 of
    the table's 4 images decodes on rank 1's machine, all 4 on rank 0's. **Was**: rank 1's "fewer than 2
    images could be read" checked outside ``alike_on_every_process``: rank 0 went on and was stopped while
    waiting for rank 1. Now rank 1 says it as rank 1, and both end before any training."""
    two = dict(sorted(photos.items())[:2])
    labelled(tmp_path / "rank0", two, readable=4)
    labelled(tmp_path / "rank1", two, readable=1)
    refused_by_rank_1_alone(
        tmp_path, "pretrain", "labels/labels.parquet: fewer than 2 images could be read — nothing to rank"
    )


@pytest.mark.slow
@pytest.mark.serial(reason="two torchrun ranks need both cores")
def test_a_resume_whose_heads_differ_on_rank_1_alone_is_said_by_rank_1(tmp_path, photos, cli):
    """`torchrun --nproc_per_node 2 -m attiqa.cli train -c run.yaml --resume` (cached pretraining) where rank
    1's label table holds the run's rows and targets with two columns in the other order (its heads differ:
    the resume's data check passes, the weights load by name). **Was**: rank 1's "heads … differ from the
    label file's columns" raised outside ``alike_on_every_process`` (no fix in it): rank 0 trained on until
    cut off. Now rank 1 says it as rank 1, with the fix; both end, nothing trained."""
    import shutil

    labelled(tmp_path / "rank0", dict(sorted(photos.items())[:2]), readable=4)
    equal_columns(tmp_path / "rank0" / "labels" / "labels.parquet", swap=False)
    with pytest.MonkeyPatch.context() as mp:  # one process, this one, in rank 0's folder
        mp.chdir(tmp_path / "rank0")
        res = cli("train", "-c", "run.yaml", "--set", "pretrain.epochs=1")
    assert res.returncode == 0, res.stderr[-3000:]
    (tmp_path / "rank0" / "run.yaml").write_text(CACHED_PRETRAIN.replace("epochs: 1", "epochs: 2"))
    shutil.copytree(tmp_path / "rank0", tmp_path / "rank1")
    equal_columns(tmp_path / "rank1" / "labels" / "labels.parquet", swap=True)
    res, ours, errors = per_rank_run(tmp_path, "train", "-c", "run.yaml", "--resume")
    assert res.returncode != 0, res.stderr[-3000:]
    assert len(errors) == 1 and errors[0].startswith(
        "error: rank 1 of 2: run/pretrain/last.safetensors: heads ['sharpness', 'contrast', "
    ), res.stderr[-3000:]
    assert "give it the label table it was trained on (the same columns in the same order)" in errors[0]
    assert "Traceback" not in ours, ours
    assert '"epoch": 1' in (tmp_path / "rank0" / "run" / "pretrain" / "last.json").read_text()


@pytest.mark.slow
def test_too_few_readable_images_for_cached_fine_tuning_on_rank_1_alone_is_said_by_rank_1(tmp_path):
    """The same for a cached fine-tuning (finetune.feature_cache: true): 8 images decode on rank 0's machine,
    1 on rank 1's. **Was**: rank 1's "too few readable images to fine-tune" outside
    ``alike_on_every_process`` while rank 0 trained on until cut off. Now rank 1 says it; both end."""
    import numpy as np
    from PIL import Image

    for r in (0, 1):
        folder = tmp_path / f"rank{r}"
        (folder / "set" / "images").mkdir(parents=True)
        for i in range(8):
            png = folder / "set" / "images" / f"img{i}.png"
            if r == 1 and i:
                png.write_bytes(b"not a png: cut short on this machine")
                continue
            Image.fromarray(np.random.default_rng(i).integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(png)
        (folder / "set" / "mos.csv").write_text(
            "image,mos\n" + "".join(f"img{i}.png,{1 + i}\n" for i in range(8))
        )
        (folder / "run.yaml").write_text(
            "out_dir: run\nmodel: {backbone: tiny, pretrained_backbone: false, head_hidden: 8}\n"
            "finetune: {csv: set/mos.csv, mos_hidden: 8, epochs: 1, batch_size: 4, resize_shorter: 40, "
            "crop_size: 32, num_workers: 0, device: cpu, feature_cache: true, feature_cache_dir: cache}\n"
        )
    refused_by_rank_1_alone(
        tmp_path, "finetune", "set/mos.csv: too few readable images to fine-tune (1 train"
    )
