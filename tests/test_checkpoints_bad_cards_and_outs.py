"""Checkpoint commands: the output folder checked before the model loads, and the checkpoint / card lines that
named a problem without its fix. Small generated fixtures, the tiny backbone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import one_line_error, tiny_attiqa_checkpoint
from PIL import Image

from attiqa.errors import AttiqaError, ModelLoadError


def make_set(folder: Path, n: int = 6) -> Path:
    """``n`` small flat-colour PNGs under folder/images with a mos.csv (image,mos)."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    lines = ["image,mos"]
    for i in range(n):
        Image.new("RGB", (48, 40), (20 + 15 * i, 60 + 7 * i, 200 - 9 * i)).save(
            folder / "images" / f"{i}.png"
        )
        lines.append(f"{i}.png,{10 + 5 * i}")
    (folder / "mos.csv").write_text("\n".join(lines) + "\n")
    return folder


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_an_out_among_the_data_is_refused_before_the_model_loads(tmp_path, cli):
    """**Was**: `eval folder --root DS -o DS` was refused only inside evaluate(), after the model loaded (a
    model that fails to load was said first, and a good one was loaded for nothing); `bench -o DS` was not
    refused at all: its tables and run folders (checkpoints, cross's scatter.png) were written among the
    photos. Now one line each, before the model or --init is read, nothing written."""
    from attiqa.datasets import get_dataset
    from attiqa.protocols import run_protocol

    ds = make_set(tmp_path / "ds")
    with (ds / "mos.csv").open("a") as f:
        f.write("gone.png,50\n")  # every image is checked before the model loads, after the --out
    before = files_under(ds)
    gone = tmp_path / "gone.safetensors"  # read only after the outputs are checked: its error never comes
    line = one_line_error(cli("eval", "folder", "--root", ds, "-m", gone, "-o", ds, "--no-cache"))
    assert line.startswith(f"error: {ds}: is the dataset's own folder"), line
    assert "choose another --out (without one, eval writes under runs/eval/)" in line, line
    out = ds / "images"
    line = one_line_error(cli("bench", "single", "-d", f"folder={ds}", "--init", gone, "-o", out))
    assert line.startswith(f"error: {out}: is the dataset's own folder"), line
    assert "(single.md, single.json, a folder per run) would land among them" in line, line
    assert "without one, bench writes under runs/bench/" in line, line
    with pytest.raises(AttiqaError, match="is the dataset's own folder"):
        run_protocol("single", [get_dataset("folder", ds)], None, ds, init_checkpoint=gone)
    assert files_under(ds) == before
    # a folder of its own under the dataset's is fine: the missing image is said next (then the model)
    line = one_line_error(cli("eval", "folder", "--root", ds, "-m", gone, "-o", ds / "ev"))
    assert "1 of 7 images are missing" in line, line


def _rewritten(src: Path, dest: Path, card_edit=None, tensor_edit=None) -> Path:
    """``src``'s checkpoint written again as another tool would: its card's ``model`` section edited by
    ``card_edit``, its tensors by ``tensor_edit`` (plain safetensors, no attiqa writer in between)."""
    from safetensors.torch import save_file

    from attiqa.io.checkpoints import load_checkpoint
    from attiqa.io.hashes import CARD_KEY

    tensors, card = load_checkpoint(src, as_stored=True)
    if card_edit:
        card_edit(card["model"])
    if tensor_edit:
        tensors = tensor_edit(tensors)
    save_file(
        {k: v.contiguous() for k, v in tensors.items()}, str(dest), metadata={CARD_KEY: json.dumps(card)}
    )
    return dest


FIX = "pass the .safetensors that attiqa train or attiqa export wrote, as written"


def test_a_card_that_does_not_fit_the_weights_says_what_to_pass(tmp_path):
    """**Was**: "weights do not match the card (size mismatch for …)" and "malformed model card — head_hidden
    8 does not match tensor …": the file and the mismatch, no fix. Seen when a file saved without a card of
    its own (plain safetensors) sits beside the .json of another checkpoint, or another tool rewrote it. Now
    each such line ends with what to pass instead."""
    from safetensors.torch import load_file, save_file

    import attiqa
    from attiqa.io.checkpoints import card_path_for

    src = tiny_attiqa_checkpoint(tmp_path)  # head_hidden 16
    plain = (
        tmp_path / "plain.safetensors"
    )  # its tensors, no card in the header; another network's card beside
    save_file(load_file(str(src)), str(plain))
    other = json.loads(card_path_for(src).read_text())
    other["model"]["head_hidden"] = 8
    card_path_for(plain).write_text(json.dumps(other))
    resized = _rewritten(  # a tensor another tool changed: the card passes, the weights do not load
        src,
        tmp_path / "resized.safetensors",
        tensor_edit=lambda t: {**t, "mos_head.2.weight": torch.zeros(1, 7)},
    )
    for path, said in (
        (plain, "malformed model card — head_hidden 8 does not match tensor heads.sharpness.fc1.weight"),
        (resized, "weights do not match the card (size mismatch for mos_head.2.weight"),
    ):
        with pytest.raises(ModelLoadError) as err:
            attiqa.load_scorer(path)
        line = str(err.value)
        assert line.startswith(f"{path}: {said}") and line.endswith(
            f"{FIX} (export it again from there: attiqa export SRC OUT)"
        ), line


DEFAULT = Path(__file__).resolve().parents[1] / "attiqa" / "data" / "models" / "attiqa-default.safetensors"


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        ({"weight": "0.5"}, "ridge.weight must be a number in 0..1, got '0.5'"),
        ({"weight": True}, "ridge.weight must be a number in 0..1, got True"),
        ({"power": float("nan")}, "ridge.power must be a finite number > 0, got nan"),
        ({"alpha": "x"}, "ridge.alpha must be a finite number >= 0, got 'x'"),
        ({"taps": "nonsense"}, "ridge.taps must be a tap set's name (stages, depthwise, depthwise_late)"),
        ({"taps": ["depthwise"]}, "ridge.taps must be a tap set's name (stages, depthwise, depthwise_late)"),
        (
            {"extra": 1},
            "ridge.extra: not a ridge head's key (its keys: taps, dim, power, weight, alpha, guard)",
        ),
        (
            {"taps": "stages"},
            "ridge.dim 19200 does not match the backbone efficientnet_lite0_ms, whose tap set "
            "'stages' has 2848 statistics — the card describes another network",
        ),
    ],
)
def test_ridge_values_of_the_wrong_type_name_the_key(tmp_path, edit, said):
    """The shipped model's ridge head with one card value changed. **Was**: a string weight "malformed model
    card — TypeError: '<=' not supported between instances of 'float' and 'str'", a bad alpha "ValueError:
    could not convert string to float", an unknown key a TypeError; a NaN power or a true weight loaded and
    scored (NaN MOS; a weight of 1); an unknown tap set, or one whose width is not the head's, a traceback at
    the first image. Now the key and the value it must hold, when the model loads."""
    import attiqa

    def ridge(model):
        model["ridge"].update(edit)

    bad = _rewritten(DEFAULT, tmp_path / "bad.safetensors", card_edit=ridge)
    with pytest.raises(ModelLoadError) as err:
        attiqa.load_scorer(bad)
    assert str(err.value).startswith(f"{bad}: malformed model card — {said}"), err.value


def test_a_pickle_is_refused_with_what_works_instead(tmp_path, cli):
    """**Was**: "pickle-based checkpoints are not loaded (unsafe) — convert it to .safetensors first", with no
    word of how — and a state dict converted to safetensors is refused in turn (no ATTIQA card). Now the line
    says that no attiqa command converts one and what does load; its two claims hold: the converted state
    dict is refused, and a torchvision ResNet-50 .pth builds a backbone as model.backbone_weights."""
    from safetensors.torch import save_file
    from torchvision.models import resnet50

    import attiqa
    from attiqa.models import create_backbone

    src = tiny_attiqa_checkpoint(tmp_path)
    model = attiqa.load_scorer(src).model
    pickle = tmp_path / "model.pt"
    torch.save(model.state_dict(), pickle)
    Image.new("RGB", (64, 64), "grey").save(tmp_path / "x.png")
    line = one_line_error(cli("score", tmp_path / "x.png", "-m", pickle))
    assert line.startswith(
        f"error: {pickle}: pickle-based checkpoints are not loaded (unsafe), and no attiqa "
        "command converts one: "
    ), line
    assert "convert it to .safetensors" not in line and "train one with attiqa train" in line, line
    converted = tmp_path / "converted.safetensors"  # what "convert it to .safetensors first" led to
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(converted))
    with pytest.raises(ModelLoadError, match="checkpoint has no ATTIQA model card"):
        attiqa.load_scorer(converted)
    pth = tmp_path / "resnet50.pth"
    torch.save(resnet50(weights=None).state_dict(), pth)
    assert create_backbone("resnet50", pretrained=True, weights=pth).feature_dim == 2048
