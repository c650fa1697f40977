"""Torchrun's LOCAL_RANK, read torch-free and checked (``attiqa.launch.launched_local_rank``): one process is
on its device's default whatever LOCAL_RANK its shell holds; under torchrun a bad one is one line."""

from __future__ import annotations

import pytest

from attiqa.errors import AttiqaError
from attiqa.launch import launched_local_rank

TORCHRUN = {"WORLD_SIZE": "2", "RANK": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}


@pytest.mark.parametrize("left", ["1", "7", "x", ""])
def test_one_process_ignores_a_local_rank_left_in_its_shell(monkeypatch: pytest.MonkeyPatch, left: str):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setenv("LOCAL_RANK", left)
    assert launched_local_rank() == 0  # was int(LOCAL_RANK): cuda:1 for one process, or a ValueError


def test_under_torchrun_local_rank_is_read_and_a_bad_one_is_one_line(monkeypatch: pytest.MonkeyPatch):
    for key, value in TORCHRUN.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert launched_local_rank() == 1
    monkeypatch.delenv("LOCAL_RANK")
    assert launched_local_rank() == 0  # a launcher that sets none: the first device, as before
    for bad in ("x", "-1", "2"):
        monkeypatch.setenv("LOCAL_RANK", bad)
        with pytest.raises(AttiqaError, match=rf"LOCAL_RANK='{bad}' with WORLD_SIZE=2: .*torchrun") as err:
            launched_local_rank()
        assert "\n" not in str(err.value)
