"""The zero-shot CLIP scorers (clipiqa, clipiqa-attributes, attiqa-zeroshot, temu-multilayer, temu-layer)
end to end on real photos with tiny random-weight open_clip models loaded through the real folder route."""

from __future__ import annotations

import csv
import json
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import TINY_CFG, run_attiqa
from PIL import Image
from safetensors.torch import save_file

from attiqa.attributes import ATTRIBUTES
from attiqa.errors import ModelLoadError
from attiqa.scorers import create_scorer, list_scorers, load_scorer
from attiqa.scoring import score_paths
from attiqa.teachers import ClipTeacher

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # one torch thread for the whole module

TINY_RN_CFG = {
    "model_cfg": {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 8, "head_width": 64},
        "text_cfg": TINY_CFG["model_cfg"]["text_cfg"],
    },
    "preprocess_cfg": TINY_CFG["preprocess_cfg"],
}
CLIP_NAMES = ("clipiqa", "clipiqa-attributes", "attiqa-zeroshot", "temu-multilayer", "temu-layer")


@pytest.fixture(scope="module")
def tiny_rn_dir(tmp_path_factory):
    """A tiny random ResNet CLIP (ModifiedResNet with attention pooling) as an open_clip folder."""
    import open_clip  # here, not at the module's top: each collection of the suite paid for it

    folder = tmp_path_factory.mktemp("tiny_rn_clip")
    (folder / "open_clip_config.json").write_text(json.dumps(TINY_RN_CFG))
    with torch.random.fork_rng():
        torch.manual_seed(1)
        model = open_clip.model.CLIP(**TINY_RN_CFG["model_cfg"])
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    return folder


@pytest.fixture(scope="module")
def imgs(photos) -> list[Image.Image]:
    """Real photos at different sizes (native-resolution scoring must cope)."""
    return [im.resize((im.width // 4, im.height // 4), Image.BICUBIC) for im in photos.values()]


def _clip(folder):
    import open_clip

    model = open_clip.create_model(f"local-dir:{folder}", load_weights=False)
    open_clip.load_checkpoint(model, str(next(folder.glob("*.safetensors"))))
    return model.eval(), open_clip.get_tokenizer(f"local-dir:{folder}")


def test_registry_lists_every_clip_scorer_with_metadata():
    infos = {i.name: i for i in list_scorers()}
    for name in CLIP_NAMES:
        info = infos[name]
        assert info.kind == "zero-shot" and info.score_range == (0.0, 1.0) and info.higher_is_better
        assert "CLIP" in info.needs
    with pytest.raises(ModelLoadError, match="did you mean 'clipiqa'"):
        create_scorer("clipiq")
    res = run_attiqa("list-scorers", env={"COLUMNS": "200"})
    assert res.returncode == 0, res.stderr
    listed = {line.split()[0] for line in res.stdout.splitlines() if line and not line[0].isspace()}
    for name in (*CLIP_NAMES, "exiqa", "classical"):  # piped: one block per scorer, its name first
        assert name in listed
    assert "[cls] of every" in res.stdout  # descriptions are printed literally (no rich markup)


def test_clipiqa_on_a_vit_is_the_good_bad_softmax(tiny_dir, imgs):
    scorer = load_scorer(f"clipiqa:{tiny_dir}")
    assert scorer.columns == ("score",) and not scorer.native
    batch = torch.stack([scorer.transform(im) for im in imgs])
    assert batch.shape[-2:] == (32, 32)  # the model's input size (224 for the real models)
    got = scorer.score_tensors(batch)[:, 0]
    # independent computation from open_clip directly: softmax(logit_scale * cos) over the pair
    model, tok = _clip(tiny_dir)
    with torch.no_grad():
        img = F.normalize(model.encode_image(batch), dim=-1)
        txt = F.normalize(model.encode_text(tok(["Good photo.", "Bad photo."])), dim=-1)
        want = torch.softmax(model.logit_scale.exp() * img @ txt.T, dim=-1)[:, 0]
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert ((got > 0) & (got < 1)).all() and got.std() > 0
    again = scorer(imgs)["score"]
    np.testing.assert_allclose(again, got.numpy(), rtol=1e-5)  # deterministic, same via __call__


def test_clipiqa_resnet_runs_at_native_resolution(tiny_rn_dir, imgs, photo_dir):
    scorer = create_scorer(f"clipiqa:{tiny_rn_dir}")
    assert scorer.native and scorer.info.max_batch == 1 and scorer.info.min_shorter is None
    t = scorer.transform(imgs[0])
    assert t.shape[-2:] == (imgs[0].height, imgs[0].width)  # no resize, no crop
    scores = scorer(imgs)["score"]  # different sizes: scored one by one
    assert scores.shape == (len(imgs),) and np.all((scores > 0) & (scores < 1))
    # the native features do depend on the resolution (no positional embedding fixes the size)
    small = scorer.image_features(scorer.transform(imgs[0].resize((64, 64))).unsqueeze(0))
    big = scorer.image_features(scorer.transform(imgs[0].resize((128, 128))).unsqueeze(0))
    assert small.shape == big.shape == (1, 32) and not torch.allclose(small, big)
    # the batch pipeline (decode workers, batches) copes with mixed sizes too
    files = sorted(photo_dir.rglob("*.*"))
    run = score_paths(files, scorer, batch_size=8, num_workers=0)
    assert len(run.rows) == len(files) and not run.failed
    # resize mode: the model's input size, stackable
    resized = create_scorer(f"clipiqa:{tiny_rn_dir}", resolution="resize")
    assert not resized.native and resized.transform(imgs[0]).shape[-2:] == (64, 64)


def test_eval_with_native_resolution_clipiqa_on_mixed_sizes(tiny_rn_dir, photo_dir, tmp_path):
    """`attiqa eval --model clipiqa` on a dataset of mixed image sizes (used to crash: "stack expects each
    tensor to be equal size", eval ignored the scorer's max_batch=1 that score honoured)."""
    from attiqa.datasets import get_dataset
    from attiqa.evaluation.evaluate import evaluate

    files = sorted(p for p in photo_dir.rglob("*.*"))
    sizes = {Image.open(f).size for f in files}
    assert len(sizes) > 1
    csv_path = tmp_path / "mos.csv"
    csv_path.write_text("image,mos\n" + "".join(f"{f},{i}\n" for i, f in enumerate(files)))
    ds = get_dataset("folder", photo_dir, csv=csv_path)
    scorer = create_scorer(f"clipiqa:{tiny_rn_dir}")
    res = evaluate(ds, scorer, tmp_path / "ev", batch_size=4, num_workers=0, cache=False, progress=False)
    assert res.n == len(files) and not res.failed
    direct = score_paths(files, scorer, num_workers=0)
    np.testing.assert_allclose(
        [r["prediction"] for r in res.rows], [r["score"] for r in direct.rows], rtol=1e-6
    )


def test_clipiqa_attributes_columns_and_overall(tiny_dir, imgs):
    from attiqa.scorers.clip_scorers import CLIPIQA_ATTRIBUTES  # (torchvision: not at the suite's collection)

    attrs = create_scorer(f"clipiqa-attributes:{tiny_dir}")
    plain = create_scorer(f"clipiqa:{tiny_dir}")
    assert attrs.columns == ("score", *ATTRIBUTES)
    assert tuple(c for c, _, _ in CLIPIQA_ATTRIBUTES) == ATTRIBUTES
    out, ref = attrs(imgs), plain(imgs)
    np.testing.assert_allclose(out["score"], ref["score"], rtol=1e-5)
    for a in ATTRIBUTES:
        assert np.all((out[a] > 0) & (out[a] < 1))
    assert attrs.metadata()["prompts"]["noisiness"] == ["Clean photo.", "Noisy photo."]


def test_attiqa_zeroshot_is_the_teacher_with_the_mean(tiny_dir, imgs):
    scorer = create_scorer(f"attiqa-zeroshot:{tiny_dir}")
    teacher = ClipTeacher(str(tiny_dir))
    out = scorer(imgs)
    want = teacher.score_images(imgs)
    got = np.stack([out[a] for a in ATTRIBUTES], axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(out["score"], want.mean(axis=1), rtol=1e-5)


def test_temu_layer_features(tiny_dir, imgs):
    from attiqa.scorers.clip_scorers import vit_layer_features

    multi = create_scorer(f"temu-multilayer:{tiny_dir}")
    assert multi.num_layers == TINY_CFG["model_cfg"]["vision_cfg"]["layers"] == 2
    batch = torch.stack([multi.transform(im) for im in imgs])
    per_layer = vit_layer_features(multi.model.visual, batch)
    assert per_layer.shape == (2, len(imgs), 32)
    with torch.no_grad():  # the last layer through ln_post + proj is CLIP's own image embedding
        torch.testing.assert_close(per_layer[-1], multi.model.encode_image(batch), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(multi.image_features(batch), per_layer.mean(0))
    # option (b) with the last layer == CLIP-IQA (option (a)) on the same ViT; layer 1 differs
    last = create_scorer(f"temu-layer:2:{tiny_dir}")(imgs)["score"]
    np.testing.assert_allclose(last, create_scorer(f"clipiqa:{tiny_dir}")(imgs)["score"], rtol=1e-4)
    first = create_scorer(f"temu-layer:1:{tiny_dir}")(imgs)["score"]
    averaged = multi(imgs)["score"]
    assert not np.allclose(first, last) and not np.allclose(averaged, last)
    assert np.all((averaged > 0) & (averaged < 1))


def test_temu_rejects_bad_layers_and_resnets(tiny_dir, tiny_rn_dir):
    with pytest.raises(ModelLoadError, match="layers 1..2"):
        create_scorer(f"temu-layer:3:{tiny_dir}")
    with pytest.raises(ModelLoadError, match="temu-layer:N"):
        create_scorer(f"temu-layer:{tiny_dir}")
    with pytest.raises(ModelLoadError, match="ViT"):
        create_scorer(f"temu-multilayer:{tiny_rn_dir}")(Image.new("RGB", (64, 64)))


@pytest.mark.parametrize("name", ["clipiqa", "temu-multilayer", "attiqa-zeroshot"])
def test_offline_hub_weights_fail_fast_with_the_scorer_flag(name, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    started = time.monotonic()
    with pytest.raises(ModelLoadError) as excinfo:
        create_scorer(name, cache_dir=tmp_path)
    msg = str(excinfo.value)
    assert time.monotonic() - started < 10 and "\n" not in msg
    assert "could not be downloaded" in msg and f"-m {name}:" in msg


def test_score_command_with_clipiqa_folder(tiny_rn_dir, photo_dir, tmp_path, cli):
    """`attiqa score --model clipiqa:FOLDER` (the entry point, in this process)."""
    out = tmp_path / "scores.csv"
    res = cli("score", photo_dir, "--model", f"clipiqa:{tiny_rn_dir}", "-o", out, "-q")
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 5 and all(0 < float(r["score"]) < 1 for r in rows)
    res = cli("score", photo_dir, "--model", "clipiqa:/nonexistent/x")
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "/nonexistent/x" in res.stderr + res.stdout


def test_a_bad_clip_folder_hint_uses_the_prefix_the_user_wrote(tmp_path):
    """`--model clipiqa:FOLDER` without open_clip_config.json hinted the teacher's `clip:MODEL/...`."""
    from attiqa.errors import ModelLoadError
    from attiqa.scorers import create_scorer

    with pytest.raises(ModelLoadError, match=r"folder has no open_clip_config.json .* or clipiqa:MODEL/"):
        create_scorer(f"clipiqa:{tmp_path}")
