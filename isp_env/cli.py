"""``isp-tune``: tune a raw ISP by reinforcement learning against an image-quality scorer (typer + rich).

Errors (:class:`attiqa.errors.AttiqaError`, e.g. an unreadable raw, no default model) end as one red line and
exit code 2 — never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from attiqa.errors import ConfigError
from attiqa.progress import console

app = typer.Typer(
    name="isp-tune",
    help="Tune the 16 parameters of a 14-module raw ISP with an SB3 agent whose reward is an image-quality "
    "MOS (ATTIQA §5.2).\n\n`isp-tune --raw-dir DIR --out RUN` splits the raws, trains, tunes and renders the "
    "test raws at full resolution and compares with baselines (neutral, rawpy, global / per-image CMA-ES). "
    "RUN gets policy.safetensors + .json, test/params/*.json, test/renders/*.png, results.csv, summary.json, "
    "report.md, grid.png. Rerun the same command to resume.\n\n`isp-tune render RAW -o out.png` renders one "
    "raw.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    invoke_without_command=True,
)
stdout = Console()

_MODEL_HELP = ("Scorer for the reward: an ATTIQA checkpoint (.safetensors), a named model, or `classical` "
               "(weight-free). Default: the bundled ATTIQA model.")


@app.callback()
def tune(
    ctx: typer.Context,
    raw_dir: Path | None = typer.Option(None, "--raw-dir", help="Folder of raws, searched recursively "
                                        "(MIT-Adobe FiveK's raw_photos/HQa*/photos/*.dng included)."),
    out: Path = typer.Option(Path("runs/isp"), "--out", "-o", help="Run folder (rerun to resume)."),
    timesteps: int = typer.Option(20_000, min=1, help="Agent environment steps."),
    algo: str = typer.Option("sac", help="sac | ppo | td3"),
    model: str | None = typer.Option(None, "--model", "-m", help=_MODEL_HELP),
    n_envs: int = typer.Option(2, min=1, help="Parallel environments (one process each)."),
    preview: int = typer.Option(256, min=32, help="Long side of the renders the agent's scorer sees."),
    obs_size: int = typer.Option(64, min=36, help="Side of the policy's image observation."),
    max_steps: int = typer.Option(4, min=1, help="Steps per episode."),
    test_fraction: float = typer.Option(0.2, min=0.0, max=0.9, help="Share of raws held out for testing."),
    seed: int = typer.Option(0, help="Seed of the split and the agent."),
    checkpoint_every: int = typer.Option(1000, min=1, help="Steps between resume checkpoints."),
    batch_size: int = typer.Option(64, min=2),
    learning_starts: int = typer.Option(200, min=0, help="SAC/TD3: random steps before learning."),
    baselines: bool = typer.Option(True, help="Also run neutral, rawpy, global and per-image CMA-ES."),
) -> None:
    """Train an agent on the training raws, tune + render the test raws, compare with baselines.

    Writes into --out: policy.safetensors + policy.json, test/params/*.json, test/renders/*.png (full
    resolution), results.csv, summary.json, report.md, grid.png. Rerunning the same command resumes.
    """
    if ctx.invoked_subcommand is not None:
        return
    if raw_dir is None:
        console.print(ctx.get_help())
        raise typer.Exit(0)
    if not raw_dir.is_dir():
        raise ConfigError(f"{raw_dir}: not a folder — pass --raw-dir with your raw files")
    from isp_env.run import run
    from isp_env.tuning import TrainConfig

    cfg = TrainConfig(algo=algo.lower(), timesteps=timesteps, n_envs=n_envs, preview=preview,
                      obs_size=obs_size, max_steps=max_steps, seed=seed, checkpoint_every=checkpoint_every,
                      batch_size=batch_size, learning_starts=learning_starts, scorer=model)
    summary = run(raw_dir, out, cfg, test_fraction=test_fraction, baselines=baselines)
    table = Table(title=f"isp-tune: mean MOS on {summary[0]['n_images']} test raws", show_lines=False)
    for col in ("method", "mean MOS", "std", "scorer calls (train)", "scorer calls (test)"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for s in summary:
        table.add_row(s["label"], f"{s['mean_mos']:.4f}", f"{s['std_mos']:.4f}", str(s["train_scorer_calls"]),
                      str(s["test_scorer_calls"]))
    stdout.print(table)
    console.print(f"report: {out / 'report.md'}, renders: {out / 'test' / 'renders'}")


@app.command()
def render(
    raw: Path = typer.Argument(..., help="Raw file (DNG or a camera format LibRaw reads)."),
    output: Path = typer.Option(..., "--output", "-o", help="Output image (.png, .jpg, .tif)."),
    policy: Path | None = typer.Option(None, "--policy", help="policy.safetensors from an isp-tune run."),
    params: Path | None = typer.Option(None, "--params", help="JSON of parameters (name -> value, or a "
                                       "test/params/*.json file); missing names take the neutral default."),
) -> None:
    """Render one raw at full resolution: with a trained policy, a parameter file, or the neutral defaults."""
    from PIL import Image

    from attiqa.io.atomic import atomic_path
    from isp_env.isp import develop, finish
    from isp_env.params import check_values, neutral
    from isp_env.raw import read_raw

    if policy is not None and params is not None:
        raise ConfigError("pass either --policy or --params, not both")
    raw_img = read_raw(raw)
    if policy is not None:
        from isp_env.policy_io import load_policy
        from isp_env.tuning import tune_with_policy

        pol, card = load_policy(policy)
        values = tune_with_policy(pol, card, raw)
    elif params is not None:
        try:
            doc = json.loads(params.read_text())
            values = check_values(doc.get("params", doc))
        except (OSError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{params}: not a readable parameter JSON ({exc}) — see isp_env/params.py for "
                              "the names") from None
    else:
        values = neutral()
    rgb = finish(develop(raw_img), values)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}.get(output.suffix.lower(), "PNG")
    with atomic_path(output) as tmp:
        Image.fromarray(rgb).save(tmp, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    console.print(f"{raw} -> {output} ({rgb.shape[1]}x{rgb.shape[0]})")
    stdout.print_json(json.dumps(values))


def main() -> None:
    from attiqa.cli import run_app

    run_app(app)


if __name__ == "__main__":
    main()
