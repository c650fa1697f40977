"""`isp_env` defects found in session 47: the library's bounds, the check's decodes, odd raws and what a
person looks at (the CLI's help, the run's report) — each on real DNGs read by rawpy."""

from __future__ import annotations

import pytest

from attiqa.errors import ConfigError


@pytest.mark.timeout(60)
@pytest.mark.parametrize("steps", [0, 21, 10**12])
def test_the_library_refuses_the_episode_lengths_the_cli_refuses(tmp_path, isp_raws, steps):
    """**Was** `--max-steps` bounded by the option parser only: `isp_env.run.run` with
    `TrainConfig(max_steps=10**12)` trained, then hung applying the agent (one render a step); now
    :func:`isp_env.tuning.check_config` refuses it before any work, with the parser's bound
    (:data:`isp_env.registration.MAX_STEPS`, one constant for both)."""
    from isp_env.registration import MAX_STEPS
    from isp_env.run import run
    from isp_env.tuning import TrainConfig

    cfg = TrainConfig(algo="sac", timesteps=4, max_steps=steps, scorer="classical", obs_mode="stats")
    with pytest.raises(ConfigError, match=rf"--max-steps {steps}: use 1 to {MAX_STEPS}"):
        run(isp_raws[0].parent, tmp_path / "run", cfg, baselines=False, subprocess=False)
    assert not (tmp_path / "run").exists()
