"""ClipTeacher mechanics on a tiny random open_clip model loaded through the real ``clip:PATH`` route;
prompt files; the teacher registry; fast offline failure for hub weights."""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from helpers import TINY_CFG
from PIL import Image

from attiqa.attributes import ATTRIBUTES
from attiqa.errors import AttiqaError, ConfigError, ModelLoadError
from attiqa.teachers import (
    ClassicalTeacher,
    ClipTeacher,
    PromptFileError,
    Teacher,
    UnknownTeacherError,
    create_teacher,
    list_teachers,
    load_prompts,
    parse_clip_spec,
)
from attiqa.teachers import clip as clip_module

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # one torch thread for the whole module

TABLE1 = {
    "sharpness": ("Splendid image", "Blurry image"),
    "contrast": ("Distinct image", "Vague image"),
    "brightness": ("Sunny image", "Darkened image"),
    "colorfulness": ("Vibrant image", "Colorless image"),
    "noisiness": ("Peerless image", "Grainy image"),  # Table 1 prints "Graimy": see the prompts file's notes
}


@pytest.fixture(scope="module")
def teacher(tiny_dir) -> ClipTeacher:
    return ClipTeacher(str(tiny_dir))


@pytest.fixture(scope="module")
def batch(teacher) -> torch.Tensor:
    imgs = [Image.fromarray(getattr(skimage.data, n)()) for n in ("astronaut", "coffee", "chelsea", "rocket")]
    imgs.append(Image.new("RGB", (50, 40), (10, 200, 30)))
    return torch.stack([teacher.transform(im) for im in imgs])


def _write_prompts(path: Path, pairs: dict[str, tuple[str, str]], **extra) -> Path:
    doc = {"format": "attiqa-prompts", "version": 1}
    doc.update(extra)
    doc["attributes"] = {a: {"positive": p, "negative": n} for a, (p, n) in pairs.items()}
    path.write_text(json.dumps(doc))
    return path


# --------------------------------------------------------------------------------------------------
# Prompt files
# --------------------------------------------------------------------------------------------------


def test_default_prompts_are_paper_table1_exactly():
    ps = load_prompts()
    assert list(ps.pairs) == list(ATTRIBUTES)
    assert {a: (p.positive, p.negative) for a, p in ps.pairs.items()} == TABLE1
    assert ps.template == "{} image" and ps.version == 1
    assert "Graimy" in ps.notes and "Table 14" in ps.notes  # the printed spelling, and why it is not used
    assert ps.texts()[:2] == ["Splendid image", "Blurry image"]


def test_prompts_round_trip_and_attribute_order_normalised(tmp_path):
    reversed_pairs = dict(reversed(list(TABLE1.items())))
    path = _write_prompts(tmp_path / "p.json", reversed_pairs, source="test", selection={"sroc": 1.0})
    ps = load_prompts(path)
    assert list(ps.pairs) == list(ATTRIBUTES) and ps.path == str(path)
    assert ps.extra == {"selection": {"sroc": 1.0}}
    again = load_prompts(ps.save(tmp_path / "q.json"))
    assert again.texts() == ps.texts() and again.fingerprint() == ps.fingerprint()
    assert again.extra == ps.extra
    assert ps.swapped().pairs["contrast"].positive == "Vague image"


def test_prompt_file_errors_name_the_file_and_the_gap(tmp_path):
    missing_attr = dict(TABLE1)
    del missing_attr["noisiness"]
    p1 = _write_prompts(tmp_path / "a.json", missing_attr)
    with pytest.raises(PromptFileError, match=r"a\.json.*missing attribute\(s\): noisiness"):
        load_prompts(p1)
    p2 = tmp_path / "b.json"
    doc = json.loads(_write_prompts(p2, TABLE1).read_text())
    del doc["attributes"]["contrast"]["negative"]
    p2.write_text(json.dumps(doc))
    with pytest.raises(PromptFileError, match=r"b\.json.*attributes\.contrast\.negative"):
        load_prompts(p2)
    typo = {("sharpnes" if a == "sharpness" else a): v for a, v in TABLE1.items()}
    with pytest.raises(PromptFileError, match="did you mean 'sharpness'"):
        load_prompts(_write_prompts(tmp_path / "c.json", typo))
    (tmp_path / "d.json").write_text("{not json")
    with pytest.raises(PromptFileError, match=r"d\.json.*not valid JSON"):
        load_prompts(tmp_path / "d.json")
    with pytest.raises(PromptFileError, match="not found"):
        load_prompts(tmp_path / "none.json")
    with pytest.raises(PromptFileError, match=r"e\.json.*unsupported version 99"):
        load_prompts(_write_prompts(tmp_path / "e.json", TABLE1, version=99))
    assert issubclass(PromptFileError, ConfigError)


# --------------------------------------------------------------------------------------------------
# Scores: eq. (1)-(2)
# --------------------------------------------------------------------------------------------------


def test_output_shape_range_and_columns(teacher, batch):
    s = teacher.score_tensors(batch)
    assert s.shape == (batch.shape[0], len(ATTRIBUTES)) and s.dtype == torch.float32
    assert torch.all((s > 0) & (s < 1))
    assert teacher.columns == ATTRIBUTES
    assert teacher.text_features is not None and teacher.text_features.shape[:2] == (5, 2)
    arr = teacher.score_images([Image.fromarray(skimage.data.coffee())])
    assert arr.shape == (1, 5) and isinstance(arr, np.ndarray)


def _by_hand(model, tokenizer, images: torch.Tensor, pos: str, neg: str, scale: float) -> torch.Tensor:
    """Eq. (1)-(2) written out from the model's own encoders."""
    with torch.no_grad():
        e_i = model.encode_image(images)
        e_t = model.encode_text(tokenizer([pos, neg]))
    cos = (e_i @ e_t.T) / (e_i.norm(dim=-1, keepdim=True) * e_t.norm(dim=-1)[None, :])
    ep, en = torch.exp(scale * cos[:, 0]), torch.exp(scale * cos[:, 1])
    return ep / (ep + en)


@pytest.mark.parametrize("scale", [1.0, 100.0])
def test_eq2_matches_hand_computation_column_by_column(tiny_dir, batch, scale):
    t = ClipTeacher(str(tiny_dir), scale=scale)
    got = t.score_tensors(batch)
    for col, attr in enumerate(ATTRIBUTES):  # column order = ATTRIBUTES, each with its own pair
        pos, neg = TABLE1[attr]
        want = _by_hand(t.model, t.tokenizer, batch, pos, neg, scale)
        torch.testing.assert_close(got[:, col], want, atol=1e-5, rtol=1e-4)


def test_swapping_positive_and_negative_gives_one_minus_score(tiny_dir, teacher, batch, tmp_path):
    swapped = {a: (n, p) for a, (p, n) in TABLE1.items()}
    t2 = ClipTeacher(str(tiny_dir), prompts=_write_prompts(tmp_path / "swap.json", swapped))
    torch.testing.assert_close(t2.score_tensors(batch), 1.0 - teacher.score_tensors(batch), atol=1e-6, rtol=0)


def test_swapping_one_attribute_only_changes_its_column(tiny_dir, teacher, batch):
    t2 = ClipTeacher.from_model(teacher.model, teacher.preprocess, teacher.tokenizer,
                                prompts=teacher.prompts.swapped(("brightness",)))  # fmt: skip
    a, b = teacher.score_tensors(batch), t2.score_tensors(batch)
    k = ATTRIBUTES.index("brightness")
    torch.testing.assert_close(b[:, k], 1.0 - a[:, k], atol=1e-6, rtol=0)
    others = [i for i in range(5) if i != k]
    torch.testing.assert_close(b[:, others], a[:, others])


def test_text_embeddings_are_computed_once(tiny_dir, batch, monkeypatch):
    import open_clip  # here, not at the module's top: each collection of the suite paid its import

    calls: list[int] = []
    original = open_clip.model.CLIP.encode_text

    def counting(self, text, normalize=False):
        calls.append(text.shape[0])
        return original(self, text, normalize=normalize)

    monkeypatch.setattr(open_clip.model.CLIP, "encode_text", counting)
    t = ClipTeacher(str(tiny_dir))
    assert calls == [10]  # one batched call for the 5 pairs
    t.score_tensors(batch)
    t.score_tensors(batch[:2])
    assert calls == [10]


def test_scale_sharpens_scores_but_keeps_their_order(tiny_dir, teacher, batch):
    # (k = 10 rather than CLIP's 100 so float32 scores of this random model stay off exactly 0 / 1.)
    s1 = teacher.score_tensors(batch)
    t10 = ClipTeacher.from_model(teacher.model, teacher.preprocess, teacher.tokenizer, scale=10.0)
    s10 = t10.score_tensors(batch)
    assert torch.all((s10 > 0) & (s10 < 1))
    # softmax of two: logit(score) = k * (cos_pos - cos_neg), so logits scale linearly with k.
    torch.testing.assert_close(
        torch.logit(s10.double()), 10.0 * torch.logit(s1.double()), rtol=1e-3, atol=1e-3
    )
    assert torch.equal(s1.argsort(dim=0), s10.argsort(dim=0))  # same ranking per attribute
    assert (s10 - 0.5).abs().mean() > (s1 - 0.5).abs().mean()
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="scale"):
            ClipTeacher.from_model(teacher.model, teacher.preprocess, teacher.tokenizer, scale=bad)


def test_metadata_records_model_prompts_and_scale(teacher, tiny_dir):
    meta = teacher.metadata()
    assert meta["teacher"] == "clip" and meta["scale"] == 1.0
    assert meta["weights"].endswith("open_clip_model.safetensors")
    assert meta["prompts"]["attributes"]["noisiness"]["negative"] == "Grainy image"
    assert len(meta["prompts_sha256"]) == 64
    json.dumps(meta)  # goes into label files


def test_pickled_teacher_is_a_light_transform_only_copy(teacher, batch):
    img = Image.fromarray(skimage.data.chelsea())
    blob = pickle.dumps(teacher)
    assert len(blob) < 200_000  # the model (~13 MB) is not shipped to workers
    copy = pickle.loads(blob)
    assert torch.equal(copy.transform(img), teacher.transform(img))
    fn = pickle.loads(pickle.dumps(teacher.transform))
    assert torch.equal(fn(img), teacher.transform(img))
    with pytest.raises(RuntimeError, match="transform-only"):
        copy.score_tensors(batch)
    assert teacher.score_tensors(batch).shape[0] == batch.shape[0]  # original untouched


# --------------------------------------------------------------------------------------------------
# Loading routes and failures
# --------------------------------------------------------------------------------------------------


def test_weights_file_inside_folder_and_bin_weights_load_the_same(tiny_dir, teacher, batch, tmp_path):
    t_file = ClipTeacher(str(tiny_dir / "open_clip_model.safetensors"))
    torch.testing.assert_close(t_file.score_tensors(batch), teacher.score_tensors(batch))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "open_clip_config.json").write_text(json.dumps(TINY_CFG))
    torch.save(teacher.model.state_dict(), bin_dir / "open_clip_pytorch_model.bin")
    t_bin = ClipTeacher(str(bin_dir))
    torch.testing.assert_close(t_bin.score_tensors(batch), teacher.score_tensors(batch))


class _Payload:
    def __reduce__(self):
        return (Path.touch, (Path(_Payload.target),))


def test_pickled_code_in_weights_is_refused_not_run(tmp_path):
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps(TINY_CFG))
    _Payload.target = str(tmp_path / "pwned")
    torch.save({"state_dict": _Payload()}, folder / "open_clip_pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="weights_only"):
        ClipTeacher(str(folder))
    assert not (tmp_path / "pwned").exists()


def test_folder_problems_are_clear_errors(tmp_path, tiny_dir):
    with pytest.raises(ModelLoadError, match="open_clip_config.json"):
        ClipTeacher(str(tmp_path))
    no_weights = tmp_path / "nw"
    no_weights.mkdir()
    (no_weights / "open_clip_config.json").write_text(json.dumps(TINY_CFG))
    with pytest.raises(ModelLoadError, match="no weights file"):
        ClipTeacher(str(no_weights))
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    cfg = json.loads(json.dumps(TINY_CFG))
    cfg["model_cfg"]["embed_dim"] = 48  # weights no longer fit the architecture
    (wrong / "open_clip_config.json").write_text(json.dumps(cfg))
    (wrong / "open_clip_model.safetensors").write_bytes(
        (tiny_dir / "open_clip_model.safetensors").read_bytes()
    )
    with pytest.raises(ModelLoadError, match="these weights do not fit the model of open_clip_config.json"):
        ClipTeacher(str(wrong))


def test_spec_grammar(tmp_path, tiny_dir):
    assert parse_clip_spec("ViT-B-16/openai").kind == "tag"
    assert parse_clip_spec("").describe() == "ViT-B-16/openai"
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"x")
    spec = parse_clip_spec(f"ViT-B-16/{weights}")  # absolute path: MODEL//abs/path
    assert (spec.kind, spec.model, spec.weights) == ("file", "ViT-B-16", weights)
    assert parse_clip_spec(str(tiny_dir)).kind == "folder"
    with pytest.raises(ModelLoadError, match="did you mean 'ViT-B-16'"):
        parse_clip_spec("ViT-B-61/openai")
    with pytest.raises(ModelLoadError, match="did you mean 'openai'"):
        parse_clip_spec("ViT-B-16/opnai")
    with pytest.raises(ModelLoadError, match="needs weights"):
        parse_clip_spec("ViT-B-16")
    with pytest.raises(ModelLoadError, match="not found"):
        parse_clip_spec(f"ViT-B-16/{tmp_path}/missing.bin")


def _assert_fast_clear_offline_error(excinfo, started: float) -> None:
    elapsed = time.monotonic() - started
    msg = str(excinfo.value)
    assert elapsed < 10.0, f"offline failure took {elapsed:.1f} s"
    assert "\n" not in msg
    assert "could not be downloaded" in msg
    assert "--teacher clip:ViT-B-16-quickgelu/path/to/open_clip_pytorch_model.bin" in msg
    assert "open_clip_config.json" in msg


def test_hub_weights_fail_fast_when_hf_hub_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    with pytest.raises(ModelLoadError) as excinfo:
        ClipTeacher("ViT-B-16/openai", cache_dir=tmp_path)
    _assert_fast_clear_offline_error(excinfo, started)
    assert "HF_HUB_OFFLINE" in str(excinfo.value)


def test_hub_weights_fail_fast_without_network(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def no_network(*args, **kwargs):  # as on an offline machine: DNS/connect fails
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(clip_module.socket, "create_connection", no_network)
    monkeypatch.setattr(clip_module, "_cached_tag_weights", lambda cfg, cache_dir: None)  # nothing cached
    started = time.monotonic()
    with pytest.raises(ModelLoadError) as excinfo:
        create_teacher("clip")  # = clip:ViT-B-16/openai, the paper's model
    _assert_fast_clear_offline_error(excinfo, started)
    assert "unreachable" in str(excinfo.value)


# --------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------


def test_registry(tiny_dir, tmp_path):
    assert list_teachers() == ["classical", "clip"]
    t = create_teacher("classical")
    assert isinstance(t, ClassicalTeacher) and isinstance(t, Teacher)
    swapped = _write_prompts(tmp_path / "s.json", {a: (n, p) for a, (p, n) in TABLE1.items()})
    c = create_teacher(f"clip:{tiny_dir}", prompts=swapped, clip_scale=7.0)
    assert isinstance(c, ClipTeacher) and c.scale == 7.0 and c.prompts.path == str(swapped)
    with pytest.raises(UnknownTeacherError, match="did you mean 'classical'") as excinfo:
        create_teacher("clasical")
    assert isinstance(excinfo.value, AttiqaError) and "\n" not in str(excinfo.value)
    with pytest.raises(UnknownTeacherError):
        create_teacher("classical:extra")
