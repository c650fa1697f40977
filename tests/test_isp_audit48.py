"""Session 48's audit of ``isp-tune``: what it rendered with, its tables at 80 columns, one ``obs_mode``
default, and what a new user met training and checking on real raws (docs/robustness.md rows)."""

from __future__ import annotations

import json
from importlib.resources import files

from isp_env.cli import app


def test_one_obs_mode_default_for_the_library_the_command_and_the_shipped_policy():
    """**Was** ``TrainConfig().obs_mode`` "image" (a CNN on the render) while ``isp-tune --obs-mode`` was
    "stats": ``TrainConfig(algo="teacher", action_mode="residual")`` was refused ("--algo teacher needs …
    --obs-mode stats", an option the library's user never gave). Now one default,
    :data:`isp_env.registration.OBS_MODE`, the shipped policy's observation."""
    from typer.main import get_command

    from isp_env.tuning import TrainConfig, check_config

    option = next(p for p in get_command(app).params if p.name == "obs_mode")
    card = json.loads((files("isp_env") / "data" / "policy-default.json").read_text())
    assert TrainConfig().obs_mode == option.default == card["env"]["obs_mode"] == "stats"
    check_config(TrainConfig(algo="teacher", action_mode="residual"))  # refused on main
