"""A checkpoint from elsewhere: the file hash of a named model through the checkpoint's one reading, and the
checkpoint path of a user whose file was not written here."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from attiqa.errors import ModelLoadError
from attiqa.scorers.zoo import named_models, resolve_weights

DEFAULT = Path(__file__).resolve().parents[1] / "attiqa" / "data" / "models" / "attiqa-default.safetensors"


def test_a_named_models_download_cut_short_says_fetch_it_again(tmp_path, monkeypatch):
    """A downloaded named model cut short (a download stopped, a full disk) keeps the mismatch's fix, "delete
    the file and fetch it again": the file hash now comes from the checkpoint's one reading
    (``weights_sha256`` = ``checkpoint_hashes(path).sha256``), where a file safetensors cannot read is
    "not a readable safetensors checkpoint", a fix about the user's own file."""
    rows = {k: dict(v) for k, v in named_models().items()}
    row = rows["attiqa-default"]
    del row["file"]
    row["url"] = "https://example.invalid/attiqa-default.safetensors"  # never fetched: the file is there
    monkeypatch.setattr("attiqa.scorers.zoo.named_models", lambda: rows)
    monkeypatch.setenv("ATTIQA_CACHE", str(tmp_path))
    data = DEFAULT.read_bytes()
    (tmp_path / "attiqa-default.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="SHA-256 mismatch for model 'attiqa-default' — delete the file"):
        resolve_weights("attiqa-default")
    (tmp_path / "attiqa-default.safetensors").write_bytes(data)
    assert resolve_weights("attiqa-default") == tmp_path / "attiqa-default.safetensors"


def _rewritten(src: Path, dest: Path, card_edit=None, tensor_edit=None) -> Path:
    """``src``'s checkpoint written again as another tool would: its card's ``model`` section edited by
    ``card_edit``, its tensors by ``tensor_edit`` (plain safetensors, no attiqa writer in between)."""
    import json

    from safetensors.torch import save_file

    from attiqa.io.checkpoints import load_checkpoint
    from attiqa.io.hashes import CARD_KEY

    tensors, card = load_checkpoint(src, as_stored=True)
    if card_edit:
        card["model"].update(card_edit)
    if tensor_edit:
        tensors = tensor_edit(tensors)
    save_file(
        {k: v.contiguous() for k, v in tensors.items()}, str(dest), metadata={CARD_KEY: json.dumps(card)}
    )
    return dest


def test_a_quantized_copy_is_refused_not_cast_into_the_float_weights(tmp_path, cli):
    """**Was**: a checkpoint whose weights are integers (an int8 copy from a quantizing tool) scored
    without a word — ``load_state_dict`` cast its integers into the float network, and the scores were of
    weights rounded to whole numbers. Now one line naming the file, the tensor and the fix."""
    from helpers import one_line_error, tiny_attiqa_checkpoint
    from PIL import Image

    import attiqa

    src = tiny_attiqa_checkpoint(tmp_path)
    int8 = _rewritten(
        src,
        tmp_path / "int8.safetensors",
        tensor_edit=lambda ts: {
            k: (v * 100).to(torch.int8) if v.is_floating_point() else v for k, v in ts.items()
        },
    )
    with pytest.raises(
        ModelLoadError, match=r"int8\.safetensors: tensor .* is int8 where the network holds float32"
    ):
        attiqa.load_scorer(int8)
    Image.new("RGB", (64, 64), "grey").save(tmp_path / "x.png")
    line = one_line_error(cli("score", tmp_path / "x.png", "-m", int8))
    assert "pass the float checkpoint that attiqa train or attiqa export wrote" in line and str(int8) in line
    for dtype in (torch.bfloat16, torch.float64):  # other float types: loaded, the same network's scores
        cast = lambda ts, d=dtype: {k: v.to(d) if v.is_floating_point() else v for k, v in ts.items()}  # noqa: E731
        other = _rewritten(src, tmp_path / f"{dtype}.safetensors", tensor_edit=cast)
        assert attiqa.load_scorer(other).model is not None


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        ({"backbone": 5}, "backbone must be a backbone's name, got 5"),
        ({"backbone": ["tiny"]}, "backbone must be a backbone's name, got ['tiny']"),
        ({"mean": [float("nan"), 0.5, 0.5]}, "mean must be three finite numbers, got [nan, 0.5, 0.5]"),
        ({"std": [0.5, float("inf"), 0.5]}, "std must be three finite numbers"),
        ({"mean": [True, 0.5, 0.5]}, "mean must be three finite numbers"),
    ],
)
def test_card_values_of_the_wrong_type_are_one_line_naming_the_key(tmp_path, edit, said):
    """**Was**: a card's ``backbone`` that is not a name reached the registry ("malformed model card —
    TypeError: 'int' object is not iterable"), and a NaN / infinite / true ``mean`` or ``std`` (JSON's NaN
    is read as a float) was accepted: every score NaN. Now the card's key and what it must be."""
    from helpers import tiny_attiqa_checkpoint

    import attiqa

    bad = _rewritten(tiny_attiqa_checkpoint(tmp_path), tmp_path / "bad.safetensors", card_edit=edit)
    with pytest.raises(ModelLoadError) as err:
        attiqa.load_scorer(bad)
    assert str(err.value).startswith(f"{bad}: malformed model card — {said}"), err.value


def test_a_link_loop_and_an_uppercase_pickle_are_said_as_what_they_are(tmp_path, cli):
    """**Was**: ``-m model.safetensors`` that is a symbolic link loop (or a link whose target is gone) said
    "checkpoint not found — check the path", of a path that is there; and ``-m model.PT`` (a pickle, named
    in capitals) was read as safetensors: "not a readable safetensors checkpoint (header too large)". Now
    the link is named as a link with its fix, and the pickle gets the pickle's line."""
    from helpers import one_line_error, tiny_attiqa_checkpoint
    from PIL import Image

    import attiqa

    loop = tmp_path / "loop.safetensors"
    loop.symlink_to(loop)
    gone = tmp_path / "gone.safetensors"
    gone.symlink_to(tmp_path / "moved-away.safetensors")
    for link in (loop, gone):
        with pytest.raises(ModelLoadError, match="a symbolic link that leads to no file") as err:
            attiqa.load_scorer(link)
        assert str(err.value).startswith(f"{link}: a symbolic link that leads to no file (a loop, or its")
    pickle = tmp_path / "model.PT"
    torch.save({"w": torch.zeros(2)}, pickle)
    with pytest.raises(
        ModelLoadError, match=r"model\.PT: pickle-based checkpoints are not loaded \(unsafe\)"
    ):
        attiqa.load_scorer(pickle)
    good = tmp_path / "good.safetensors"
    good.symlink_to(tiny_attiqa_checkpoint(tmp_path))  # a link that leads to a checkpoint is loaded
    assert attiqa.load_scorer(good).model is not None
    Image.new("RGB", (64, 64), "grey").save(tmp_path / "x.png")
    line = one_line_error(cli("score", tmp_path / "x.png", "-m", loop))  # the command's one line
    assert "ln -sfn FILE.safetensors" in line, line
