"""The training and run paths' structure: the Trainer's net made once, the cached loops' steps computing
through it, and `attiqa train`'s named-dataset split decided by `attiqa bench`'s plan."""

from __future__ import annotations

import copy

import pytest
import torch
from helpers import ft_cfg

from attiqa.attributes import ATTRIBUTES
from attiqa.errors import AttiqaError
from attiqa.models import AttiqaModel, create_backbone
from attiqa.training.losses import mos_loss
from attiqa.training.mos import OnFeatures, cached_mos_trainer
from attiqa.training.trainer import Trainer


class Batches:
    def epoch(self, e):
        return [(torch.zeros(2, 1), torch.zeros(2)) for _ in range(2)], 2


def tiny_trainer(stage_dir, wraps: list[int], interrupt_at: int | None = None) -> Trainer:
    """A real Trainer on the tiny backbone, its loss a plain function of the net's weights, whose ``wrap``
    returns the model itself (as ``wrap_ddp`` does in one process), counting its calls in ``wraps``; its
    ``interrupt_at``-th step (1-based) stops like Ctrl-C."""
    torch.manual_seed(0)
    model = AttiqaModel(create_backbone("tiny", pretrained=False), ATTRIBUTES, 8)
    steps = [0]

    def step_loss(net, x, y):
        steps[0] += 1
        if steps[0] == interrupt_at:
            raise KeyboardInterrupt
        return sum(p.pow(2).sum() for p in net.parameters()) * 1e-3 + x.sum() + y.sum()

    def wrap(m: torch.nn.Module) -> torch.nn.Module:
        wraps.append(1)
        return m

    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    return Trainer("pretrain", model, Batches(), step_loss, opt, 3, stage_dir=stage_dir, progress=False,
                   wrap=wrap)  # fmt: skip


def test_the_trainer_makes_its_net_once_however_often_fit_is_entered(tmp_path):
    """**Was**: fit() wrapped the model when ``net is model`` — whether it was wrapped was read from object
    identity, so a ``wrap`` that returns the model itself (DDP's in one process) ran again on every fit(): a
    fit() re-entered after an interruption wrapped afresh. Now fit() makes the net once, after resume(), and
    a re-entered fit() runs through the same one; before fit() there is none."""
    wraps: list[int] = []
    t = tiny_trainer(tmp_path / "a", wraps, interrupt_at=4)  # epoch 2, its second step
    with pytest.raises(RuntimeError, match=r"made by fit\(\)"):
        _ = t.net
    with pytest.raises(KeyboardInterrupt):
        t.fit()
    assert len(wraps) == 1 and t.net is t.model
    t.start_epoch = len(t.history)  # re-entered after the interruption: the epochs left
    history = t.fit()
    assert len(wraps) == 1 and [h["epoch"] for h in history] == [1, 2, 3]

    resumed: list[int] = []  # a new trainer resuming the run: wrapped once, after the resume read the state
    r = tiny_trainer(tmp_path / "a", resumed)
    r.epochs = 4
    assert [h["epoch"] for h in r.fit(resume=True)] == [1, 2, 3, 4] and len(resumed) == 1


def small_mos_model() -> AttiqaModel:
    torch.manual_seed(0)
    return AttiqaModel(create_backbone("tiny", pretrained=False), ATTRIBUTES, 8, mos_hidden=8)


def test_the_cached_mos_step_computes_through_the_net_it_is_given(tmp_path):
    """**Was**: the cached loops' ``step_loss(net, x, y)`` ignored ``net`` and ran the closure's model
    ("(net: the model)"), so whatever the Trainer made of the model (a wrapper's hooks) was bypassed. Now
    it computes through ``net``: the model's forward on features (:class:`OnFeatures`)."""
    model = small_mos_model()
    other = copy.deepcopy(model)
    with torch.no_grad():
        for p in other.mos_head.parameters():
            p.add_(0.5)
    feats = torch.randn(6, 2, model.backbone.feature_dim)
    rows, target01 = torch.arange(6), torch.linspace(0, 1, 6)
    cfg = ft_cfg(tmp_path / "mos.csv", batch_size=6, mos_hidden=8, head_hidden=8)
    t = cached_mos_trainer(model, cfg, feats, rows, target01, progress=False)
    x = feats[:, 0]
    through_other = t.step_loss(OnFeatures(other), x, target01)
    with torch.no_grad():
        expect = mos_loss(other.forward_features(other.backbone.normalize(x)).mos, target01, cfg.plcc_weight)
        mine = t.step_loss(OnFeatures(model), x, target01)
    assert torch.equal(through_other.detach(), expect) and not torch.equal(expect, mine)
    t.fit()
    assert isinstance(t.net, OnFeatures) and t.net.model is model  # the net it trained through


def test_a_cached_trainer_asked_to_be_wrapped_says_why_not_in_one_line(tmp_path):
    """The cached loops are never DDP-wrapped (every process trains on all the batches): a ``wrap=`` is
    refused in one line rather than taken and left unused."""
    model = small_mos_model()
    feats = torch.randn(4, 2, model.backbone.feature_dim)
    with pytest.raises(AttiqaError) as err:
        cached_mos_trainer(model, ft_cfg(tmp_path / "mos.csv"), feats, torch.arange(4), torch.zeros(4),
                           wrap=lambda m: m)  # fmt: skip
    assert "\n" not in str(err.value) and "never DDP-wrapped" in str(err.value)


def grouped_set(folder, n: int, groups: list[str]):
    """``n`` PNGs of distinct grey levels with a mos.csv naming each one's group (``prompt``), and a
    byte-identical copy of the first listed in another group (copies share a side); returns the CSV."""
    import shutil

    from PIL import Image

    (folder / "images").mkdir(parents=True)
    rows = ["image,mos,prompt"]
    for i in range(n):
        Image.new("L", (40, 32), 5 + 9 * i).save(folder / "images" / f"p{i:02d}.png")
        rows.append(f"p{i:02d}.png,{(i * 7) % 11 + 1},{groups[i % len(groups)]}")
    shutil.copy(folder / "images" / "p00.png", folder / "images" / "copy.png")
    rows.append(f"copy.png,3,{groups[-1]}")
    (folder / "mos.csv").write_text("\n".join(rows) + "\n")
    return folder / "mos.csv"


@pytest.mark.parametrize("group_by", ["prompt", "none"])
def test_train_and_bench_hold_out_the_same_images_for_one_dataset_seed_share_and_grouping(tmp_path, group_by):
    """`attiqa train`'s ``finetune.dataset`` split and `attiqa bench`'s plan decided it in two places (the
    official split, the groups, copies, the share held out, too few images or groups); now the train split
    is the bench plan's, so for the same dataset, seed, held-out share and grouping they hold out the same
    images — `single`'s 80/20, and `data-efficient`'s 30 % trained on (70 % held out)."""
    from attiqa.bench_setup import bench_dataset
    from attiqa.bench_splits import plan_splits
    from attiqa.config import FinetuneConfig
    from attiqa.datasets import get_dataset
    from attiqa.protocols import dataset_split

    csv = grouped_set(tmp_path / "set", 24, [f"prompt {k}" for k in range(8)])
    ds = get_dataset("folder", csv)
    b = bench_dataset(ds, "set")
    grouped = None if group_by == "none" else group_by
    for seed in (0, 3):
        single = plan_splits("single", [b], 1, seed, None, grouped, ())
        efficient = plan_splits("data-efficient", [b], 1, seed, None, grouped, (0.3,))
        for bench_split, held_out in (
            (single.splits(b)[0], 0.2),
            (efficient.fraction_splits(b, 0.3)[0], 0.7),
        ):
            cfg = FinetuneConfig(dataset="folder", root=str(csv), group_by=group_by, split_seed=seed,
                                 val_fraction=held_out)  # fmt: skip
            data = dataset_split(cfg)
            held = {str(data.paths[i]) for i in data.val}
            assert held == {str(ds.items[i].image) for i in bench_split.test}
            assert len(held) < len(ds) and ("group by prompt" in data.kind) == (grouped is not None)
            copies = {str(csv.parent / "images" / n) for n in ("p00.png", "copy.png")}
            assert len(copies & held) in (0, 2)  # a copy of a training image is never held out
