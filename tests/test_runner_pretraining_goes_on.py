"""`runner.pretraining_goes_on` on saved states whose epoch is not a count: unreadable, as its docstring
says (false), like a state that cannot be opened."""

from __future__ import annotations

import pytest

from attiqa.io.checkpoints import save_training_state
from attiqa.runner import pretraining_goes_on


@pytest.mark.parametrize("epoch", ["3", 2.5, None, [1], True])
def test_a_state_whose_epoch_is_not_an_integer_is_unreadable(tmp_path, epoch):
    """**Was**: a state whose ``epoch`` is ``"3"`` (or 2.5, null, a list) "went on" (true) — the
    interrupted words then said the fine-tuning trains again — while a state that cannot be opened is false
    (the docstring's rule). Now both are unreadable: false. A bool is no epoch count either."""
    save_training_state(tmp_path / "last.state.safetensors", {}, {"epoch": epoch, "global_step": 4})
    assert pretraining_goes_on(tmp_path, 5) is False


def test_a_state_short_of_its_epochs_goes_on(tmp_path):
    """The rule itself, unchanged: 2 epochs done of 5 trains on; none saved is false."""
    assert pretraining_goes_on(tmp_path, 5) is False
    save_training_state(tmp_path / "last.state.safetensors", {}, {"epoch": 2, "global_step": 4})
    assert pretraining_goes_on(tmp_path, 5) is True
