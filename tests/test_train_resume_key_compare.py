"""Training resumes compare whole values: data records alike in their first characters are different data, and
a NaN setting continues its own run."""

from __future__ import annotations

from attiqa.training.data import data_key, short_key


def test_data_records_alike_in_their_first_8_characters_are_different_data():
    """**Was**: ``data_key`` cut the hash to 8 characters, so two label tables whose row hashes began alike
    passed the processes' start check as one table; now the whole hash is compared, shortened only when
    a message shows it."""
    mine = {"file": "labels.parquet", "rows": "0123abcd" + "1" * 8}
    theirs = {"file": "labels.parquet", "rows": "0123abcd" + "2" * 8}
    assert data_key(mine) != data_key(theirs)
    assert data_key(mine) == data_key(dict(mine))
    assert short_key(data_key(mine)) == "0123abcd" and short_key(None) is None


def tiny_trainer(stage_dir, epochs, settings):
    """A real Trainer on the tiny backbone, its loss a plain function of the weights (the data does not
    matter to a resume's settings check)."""
    import torch

    from attiqa.attributes import ATTRIBUTES
    from attiqa.models import AttiqaModel
    from attiqa.models.backbones import create_backbone
    from attiqa.training.trainer import Trainer

    class Batches:
        def epoch(self, e):
            return [(torch.zeros(2, 1), torch.zeros(2)) for _ in range(2)], 2

    torch.manual_seed(0)
    model = AttiqaModel(create_backbone("tiny", pretrained=False), ATTRIBUTES, 8)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def step_loss(net, x, y):
        return sum(p.pow(2).sum() for p in model.parameters()) * 1e-3 + x.sum() + y.sum()

    return Trainer("pretrain", model, Batches(), step_loss, opt, epochs, stage_dir=stage_dir,
                   progress=False, settings=settings)  # fmt: skip


def test_a_resume_with_a_nan_setting_continues_its_own_run(tmp_path):
    """**Was**: the trainer compared a resume's settings after a JSON round trip with ``!=``, and NaN is
    unequal to itself, so a run whose settings held a NaN (a Trainer's ``settings`` built in code: the
    config's ranged numbers refuse NaN) refused its own ``--resume``: "pretrain.margin: nan differs from
    the nan the run … was trained with"; now values are compared with NaN equal to NaN
    (``io.run_meta.same_setting``), and another value is still refused."""
    import pytest

    from attiqa.errors import AttiqaError

    settings = {"margin": float("nan"), "loss": "margin"}
    tiny_trainer(tmp_path, 1, settings).fit()
    history = tiny_trainer(tmp_path, 2, dict(settings)).fit(resume=True)
    assert [h["epoch"] for h in history] == [1, 2]
    with pytest.raises(AttiqaError, match=r"pretrain\.margin: 0\.5 differs from the nan"):
        tiny_trainer(tmp_path, 3, {**settings, "margin": 0.5}).fit(resume=True)
