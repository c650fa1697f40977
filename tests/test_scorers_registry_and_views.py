"""The scorers and the model registry — one resolver for "a checkpoint, else a named model's file", one
meaning of a score range, the views entry point, and a new user's pass over `attiqa models`, `attiqa demo`,
`attiqa score` on odd files and the ExIQA / TeMu-IQA scorers. Real scorers (the shipped models, `classical`,
tiny random-weight networks for the machinery) on real photos; each test failed before its fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import tiny_attiqa_checkpoint
from PIL import Image
from typer.testing import CliRunner

from attiqa.cli.app import app
from attiqa.errors import AttiqaError

runner = CliRunner()


def _run_folder(root: Path) -> Path:
    """A run folder of `attiqa train` holding a (tiny, random-weight) RUN/finetune/last.safetensors."""
    stage = root / "finetune"
    stage.mkdir(parents=True)
    ckpt = tiny_attiqa_checkpoint(stage)
    ckpt.rename(stage / "last.safetensors")
    ckpt.with_suffix(".json").rename(stage / "last.json")
    return root


def test_export_and_bench_init_resolve_a_checkpoint_or_a_named_model_alike(tmp_path):
    """**Was**: two resolvers of "a checkpoint path, else a named model's file" — `attiqa export RUN out`
    (a run folder, as `--model RUN` takes) was "RUN: not a readable safetensors checkpoint (No such device
    …)", and `attiqa bench --init RUN` "RUN: initial checkpoint not found". Now both are
    `attiqa.scorers.zoo.checkpoint_file`: a file, a run folder's checkpoint, or a named model's file."""
    from attiqa.bench_setup import init_path
    from attiqa.scorers.zoo import checkpoint_file, resolve_weights

    run = _run_folder(tmp_path / "run")
    ckpt = run / "finetune" / "last.safetensors"
    assert checkpoint_file(run) == ckpt == init_path(str(run)) == checkpoint_file(ckpt)
    assert (
        checkpoint_file("attiqa-default") == resolve_weights("attiqa-default") == init_path("attiqa-default")
    )
    res = runner.invoke(app, ["export", str(run), str(tmp_path / "out.safetensors")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out.safetensors").is_file()
    for bad in (tmp_path / "missing.safetensors", tmp_path / "empty_run"):
        if bad.suffix != ".safetensors":
            bad.mkdir()
        with pytest.raises(AttiqaError, match="pass a .safetensors file of `attiqa train`|holds no ATTIQA"):
            init_path(str(bad))
    with pytest.raises(AttiqaError, match="unknown model name 'attiqa-defualt' \\(did you mean"):
        checkpoint_file("attiqa-defualt")
    assert init_path(None) is None


@pytest.fixture(scope="module")
def default_scorer():
    import attiqa

    return attiqa.create_scorer("attiqa-default")


@pytest.fixture(scope="module")
def small(photos) -> list:
    from PIL import Image

    return [im.resize((160, round(160 * im.height / im.width)), Image.BICUBIC) for im in photos.values()][:3]


def test_every_scorer_keeps_its_view_sizes_from_its_init(default_scorer, tmp_path):
    """**Was**: `Scorer._view_of_size` made its cache with `self.__dict__.setdefault("_view_sizes", {})` on
    first use, in case a scorer skipped `Scorer.__init__`. Every scorer calls it, so the cache is plain
    state made there — empty until a tensor is scored, one entry per image size after."""
    import attiqa
    from attiqa.teachers import ClassicalTeacher

    scorers = [default_scorer, attiqa.create_scorer("classical"), ClassicalTeacher()]
    scorers.append(attiqa.load_scorer(tiny_attiqa_checkpoint(tmp_path)))
    for s in scorers:
        s._view_sizes.clear()  # the module's default scorer may have scored tensors already
        view = s.transform(Image.new("RGB", (64, 48)))
        s(view)
        assert list(s._view_sizes) == [(int(view.shape[-2]), int(view.shape[-1]))], type(s).__name__


def test_a_float_batch_of_image_tensors_is_refused_and_views_of_another_size_have_their_own_entry(
    default_scorer, small
):
    """**Was**: a float (N, 3, H, W) batch of image tensors (torchvision's `to_tensor` of each photo,
    stacked) was taken as the model's views — not resized, cropped or normalised — and scored: a
    plausible, wrong MOS per photo (one (3, H, W) image tensor was already refused). The reward of
    isp_env passes its own views of another size (a render resized to the model's scale, whole or
    centre-cropped) through `scorer(...)`, so the batch rule could not be strict. Now the reward calls
    `scorer.score_views(batch)` (views taken as they are) and `scorer(tensor)` takes only transform outputs,
    one or stacked; the reward's MOS is what the views' network pass gives, exactly."""
    import numpy as np
    import torch

    from attiqa.models.transforms import CenterCropTest, Normalize, resize_shorter
    from isp_env.mos_function import from_scorer

    im = small[0].crop((0, 0, 160, 100))
    images = torch.stack([torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float() / 255] * 2)
    with pytest.raises(AttiqaError, match=r"is not this scorer's view: .* scorer\.score_views\(batch\)"):
        default_scorer(images)
    views = torch.stack([default_scorer.transform(x) for x in small])
    by_call, by_views = default_scorer(views), default_scorer.score_views(views)
    for c in default_scorer.columns:
        np.testing.assert_array_equal(by_call[c], by_views[c])
    renders = [np.asarray(x) for x in small]
    for mode in ("center", "whole"):
        mos = from_scorer(default_scorer, one_pass=mode, batch_size=1)
        got = mos(renders)
        cfg, shorter = default_scorer.model.card_config(), int(default_scorer.info.min_shorter)
        want = []
        for r in renders:  # main's path: scorer(view batch) = score_tensors(batch), one view a pass
            img = Image.fromarray(r)
            if mode == "center":
                view = CenterCropTest(cfg["mean"], cfg["std"], shorter, int(cfg["test_crop"]))(img)
            else:
                view = Normalize(cfg["mean"], cfg["std"])(resize_shorter(img, shorter))
            want.append(float(default_scorer.score_tensors(view[None]).float()[0, 0]))
        np.testing.assert_array_equal(got, np.asarray(want))


def test_score_range_is_the_scale_and_the_reward_keeps_its_training_range(default_scorer, tmp_path):
    """**Was**: two meanings of a score range — `attiqa models` showed `attiqa-default` 0–100 (its registry
    row) and `create_scorer("attiqa-default").info.score_range` was (3.50, 91.44), the MOS range of its
    training photos (its card's `mos_range`), which contact sheets ("range 3-91") and genbench's records
    showed as the scale. Now `score_range` is the scale scores are on everywhere (a named model's registry
    row; a copy `attiqa export` made carries it in its card; a checkpoint of one's own, whose scale nobody
    recorded, its training range) and `trained_range` the training MOS range. isp_env's reward divides by
    `reward_range` (the training range when there is one): the same numbers as before, exactly."""
    import json

    import attiqa
    from attiqa.io.checkpoints import read_card
    from attiqa.models import AttiqaModel, create_backbone, save_model
    from attiqa.scorers.zoo import resolve_weights
    from isp_env.mos_function import from_scorer

    res = runner.invoke(app, ["models"])
    assert "attiqa-default  (trained, range 0-100, higher is better)" in res.output, res.output
    assert "attiqa-agiqa3k  (trained, range 0-5, higher is better)" in res.output
    assert "exiqa  (trained, range the MOS scale of its regressor's training CSV" in res.output
    # the reward's range before this change, per shipped model: its card's mos_range (main's score_range)
    before = {
        "attiqa-default": (3.4976000785827637, 91.43620300292969),
        "attiqa-agiqa3k": (0.0, 4.488740921020508),
    }
    for name, scale in (("attiqa-default", (0.0, 100.0)), ("attiqa-agiqa3k", (0.0, 5.0))):
        scorer = default_scorer if name == "attiqa-default" else attiqa.create_scorer(name, crops="center")
        card_range = tuple(read_card(resolve_weights(name))["mos_range"])
        assert scorer.info.score_range == scale and scorer.info.trained_range == card_range == before[name]
        assert attiqa.load_scorer(resolve_weights(name), crops="center").info.score_range == scale
        for one_pass in ("center", False):
            reward = from_scorer(scorer, one_pass=one_pass)
            assert reward.score_range == before[name] and reward.width == before[name][1] - before[name][0]
    assert from_scorer(attiqa.create_scorer("classical")).score_range == (0.0, 1.0)

    copy = tmp_path / "mine.safetensors"
    assert runner.invoke(app, ["export", "attiqa-default", str(copy), "--name", "mine"]).exit_code == 0
    assert json.loads(copy.with_suffix(".json").read_text())["score_range"] == [0.0, 100.0]
    mine = attiqa.load_scorer(copy, crops="center").info
    assert (mine.name, mine.score_range, mine.trained_range) == (
        "mine",
        (0.0, 100.0),
        before["attiqa-default"],
    )
    torch_model = AttiqaModel(create_backbone("tiny"), head_hidden=8, mos_hidden=8)
    torch_model.set_mos_range(1.0, 5.0)
    own = attiqa.load_scorer(save_model(torch_model, tmp_path / "own.safetensors", card={"name": "own"})).info
    assert own.score_range == own.trained_range == own.reward_range == (1.0, 5.0)
    bad = save_model(torch_model, tmp_path / "bad.safetensors", card={"name": "bad", "score_range": [5, 1]})
    with pytest.raises(
        AttiqaError, match="score_range must be two finite numbers, low < high, got \\[5, 1\\]"
    ):
        attiqa.load_scorer(bad)


def _exiqa_run(folder: Path, clip: str, tiny_dir: Path, regressor: bool) -> Path:
    """A run folder of `attiqa train exiqa` as it saves one: exiqa.safetensors (prompts + weight logits of a
    tiny random CLIP, untrained: the machinery) whose card names ``clip``, and a regressor.safetensors."""
    import torch

    from attiqa.exiqa.model import ExiqaModel, Regressor, load_attribute_table
    from attiqa.io.checkpoints import save_checkpoint
    from attiqa.teachers.clip import load_open_clip, parse_clip_spec

    clip_model, _, tokenizer, _ = load_open_clip(parse_clip_spec(str(tiny_dir)))
    table = load_attribute_table()
    torch.manual_seed(0)
    model = ExiqaModel(clip_model, tokenizer, table, n_prompts=2)
    card = {
        "kind": "exiqa",
        "clip": clip,
        "distortions": list(table.distortions),
        "attributes": [list(a) for a in table.attributes],
        "prompt_positive": table.positive,
        "prompt_negative": table.negative,
    }
    folder.mkdir(parents=True)
    save_checkpoint(folder / "exiqa.safetensors", model.trainable_state(), card)
    if regressor:
        reg = Regressor(len(table.distortions) * table.k, 8)
        reg_card = {
            "kind": "exiqa-regressor",
            "hidden": 8,
            "mos_mean": 3.0,
            "mos_std": 1.0,
            "mos_range": [1.0, 5.0],
        }
        tensors = {f"regressor.{k}": v for k, v in reg.state_dict().items()}
        save_checkpoint(folder / "regressor.safetensors", tensors, reg_card)
    return folder


def test_exiqa_and_temu_layer_hints_name_a_model_form_that_works(tiny_dir, tmp_path, monkeypatch, photos):
    """**Was** (offline, a new user's first try of the paper scorers): `-m temu-layer:5` without the CLIP
    weights said "pass a local path: -m temu-layer:ViT-L-14-quickgelu/path/to/…bin, or -m
    temu-layer:path/to/folder" — forms without the layer, refused as "temu-layer needs a layer"; a folder
    without open_clip_config.json hinted `temu-layer:MODEL/…` likewise. `-m exiqa:RUN` whose card names hub
    weights (a run trained on another machine) said "-m exiqa:PATH --clip ViT-B-16-quickgelu/…": `attiqa
    score` has no --clip, and nothing else could give the weights. `exiqa:FOLDER` without exiqa.safetensors
    was "FOLDER/exiqa.safetensors: checkpoint not found — … use a model name from `attiqa models`"; and a
    scorer with its eq. (9) regressor recorded "score: NaN: the eq. (9) regressor is not trained by this
    version" in every output's metadata. Now each hint is a form that loads (`temu-layer:N:SPEC`,
    `exiqa:RUN:SPEC`, tried here with the tiny CLIP folder), the folder is named, the metadata says what the
    score is."""
    import math

    import attiqa
    from attiqa.errors import ModelLoadError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelLoadError) as offline:
        attiqa.create_scorer("temu-layer:5", cache_dir=tmp_path / "hf")
    assert "-m temu-layer:5:ViT-L-14-quickgelu/path/to/" in str(offline.value)
    assert "-m temu-layer:5:path/to/folder" in str(offline.value)
    with pytest.raises(ModelLoadError, match=r"or temu-layer:5:MODEL/"):
        attiqa.create_scorer(f"temu-layer:5:{tmp_path}")
    assert attiqa.create_scorer(f"temu-layer:2:{tiny_dir}").info.name == "temu-layer"

    image = photos["coffee"].resize((64, 43))
    run = _exiqa_run(tmp_path / "run", "ViT-B-16/openai", tiny_dir, regressor=True)
    with pytest.raises(ModelLoadError) as offline:
        attiqa.create_scorer(f"exiqa:{run}")
    assert f"-m exiqa:{run}:ViT-B-16-quickgelu/path/to/" in str(offline.value), offline.value
    assert "--clip" not in str(offline.value)
    scorer = attiqa.create_scorer(f"exiqa:{run}:{tiny_dir}")
    assert scorer.clip_spec == str(tiny_dir) and math.isfinite(scorer(image)["score"])
    assert scorer.metadata()["score"] == "eq. (9): the regressor's MOS (regressor.safetensors)"
    assert scorer.info.score_range == scorer.info.trained_range == (1.0, 5.0)
    assert scorer.info is scorer.info  # made once (session 48: was rebuilt on each access)
    bare = attiqa.create_scorer(
        f"exiqa:{_exiqa_run(tmp_path / 'bare', str(tiny_dir), tiny_dir, regressor=False)}"
    )
    assert math.isnan(bare(image)["score"]) and bare.metadata()["score"].startswith("NaN: no regressor")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match=r"empty: holds no exiqa\.safetensors — pass the --out folder"):
        attiqa.create_scorer(f"exiqa:{tmp_path / 'empty'}")


def test_the_demo_says_what_its_models_numbers_mean(tmp_path):
    """**Was**: `attiqa demo -m classical` (and `-m attiqa-agiqa3k`) ended "MOS is on the CLIVE scale
    (0-100, higher is better); attribute scores are percentiles among the model's pretraining photos" — of
    a scorer with no MOS, whose `score` is 0-1, or a model on AGIQA-3k's 0-5. Now the line is the scorer's."""
    res = runner.invoke(app, ["demo", "-m", "classical", "-o", str(tmp_path / "demo")])
    assert res.exit_code == 0, res.output
    assert "CLIVE" not in res.output
    assert "score is in 0-1 (higher is better; not a MOS: classical never saw human ratings); attribute " in (
        " ".join(res.output.split())
    )
    import attiqa
    from attiqa.cli.score import what_scores_mean

    line = what_scores_mean(attiqa.create_scorer("attiqa-agiqa3k", crops="center"))
    assert line.startswith("MOS is on a 0-5 scale (higher is better); attribute scores are percentiles")


def test_the_plain_score_table_lines_up_names_of_wide_and_combining_characters(tmp_path, photos):
    """**Was**: `attiqa score … | cat` padded names by characters: a photo named `写真_café.jpg` (CJK: two
    terminal cells a character) pushed its row's numbers 2 cells right of the header's, and a name with a
    combining accent (macOS writes NFD names: `cafe\\u0301.jpg`) pulled them 1 left. Now padded by cells."""
    import unicodedata

    from rich.cells import cell_len

    names = ["写真の名前_café.jpg", unicodedata.normalize("NFD", "café.jpg"), "plain.jpg", "長" * 40 + ".jpg"]
    small = photos["coffee"].resize((64, 43))
    for n in names:
        small.save(tmp_path / n)
    res = runner.invoke(app, ["score", *(str(tmp_path / n) for n in names), "-m", "classical"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    table = lines[lines.index("4 image(s) scored") + 1 :][:8]  # header, 4 rows, mean / min / max
    assert len({cell_len(line) for line in table}) == 1, table


def test_an_image_over_the_pixel_limit_is_skipped_with_a_fix_a_command_can_follow(tmp_path):
    """**Was**: "… exceeds the 200 MP safety limit — downscale it first or raise max_pixels if you trust the
    file": no command has a max_pixels option (it is a Python parameter of `load_image`). Now the fix is one
    a user of `attiqa score` can follow."""
    Image.new("L", (15000, 14000)).save(tmp_path / "huge.png")
    Image.new("RGB", (64, 48), (90, 120, 150)).save(tmp_path / "ok.png")
    res = runner.invoke(app, ["score", str(tmp_path), "-m", "classical"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert (
        "huge.png: 15000x14000 = 210 MP exceeds the 200 MP safety limit — downscale it below the limit "
        in text
    )
    assert "max_pixels" not in text


def test_a_contact_sheet_writes_non_ascii_names_in_letters_its_font_has(tmp_path, photos):
    """**Was**: `attiqa score … --sheet s.png` drew each character Pillow's default font lacks (it has
    ASCII) as an empty box: `café_ü日本.jpg` read `caf▯_▯▯▯.jpg`, a name that is not UTF-8 `x▯.jpg`. Now
    accents are dropped and other characters are `?` (`café` is drawn as `cafe` is), undecodable bytes as
    the tables show them (`x\\xff.jpg`)."""
    import numpy as np

    from attiqa.drawing import drawable_name

    assert drawable_name("café_ü日本.jpg") == "cafe_u??.jpg"
    assert drawable_name(Path(b"x\xff.jpg".decode("utf-8", "surrogateescape")).name) == "x\\xff.jpg"
    small = photos["coffee"].resize((64, 43))
    sheets = []
    for name in ("café.jpg", "cafe.jpg"):
        folder = tmp_path / name.replace(".jpg", "_dir")
        folder.mkdir()
        small.save(folder / name)
        res = runner.invoke(app, ["score", str(folder), "-m", "classical", "--sheet", str(folder / "s.png")])
        assert res.exit_code == 0, res.output
        sheets.append(np.asarray(Image.open(folder / "s.png")))
    np.testing.assert_array_equal(sheets[0], sheets[1])


def test_an_exiqa_contact_sheet_tells_its_distortions_apart():
    """**Was**: an ExIQA sheet (`score -m exiqa:RUN --sheet s.png`) labelled its 25 bars in the attributes'
    92 px: "kadid_color_..." four times, "kadid_white_..." twice — which bar was which could not be read.
    Now the names' shared prefix is dropped and the labels get up to 60 % of the cell: each distinct. The
    attribute sheets keep their layout (same labels, 92 px; byte-identical sheets, checked by hand)."""
    from PIL import ImageDraw

    from attiqa.attributes import ATTRIBUTES, display_name
    from attiqa.contact_sheet import bar_labels
    from attiqa.drawing import fit_lines, font
    from attiqa.exiqa.model import load_attribute_table

    draw, small = ImageDraw.Draw(Image.new("RGB", (10, 10))), font(12)
    assert bar_labels(draw, ATTRIBUTES, small, 220) == ([display_name(a) for a in ATTRIBUTES], 92)
    distortions = load_attribute_table().distortions
    labels, width = bar_labels(draw, distortions, small, 220)
    assert labels[0] == "gaussian_blur" and width == 132
    shown = ["".join(fit_lines(draw, label, small, width - 4, 1)) for label in labels]
    assert len(set(shown)) == len(distortions) == 25, shown
