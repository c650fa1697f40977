"""The ``genbench`` command line: generated image pairs, a preference study, metric–human agreement.

Thin: parses, calls the library, prints. Every :class:`attiqa.errors.AttiqaError` ends as one red line
and exit code 2 — never a traceback.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from attiqa.progress import console, progress_task

app = typer.Typer(
    name="genbench",
    help="Quality metrics as judges of a generative model (ATTIQA §5.1): make image pairs, collect human "
    "preferences, measure each metric's agreement with them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
stdout = Console()


@app.callback()
def _root() -> None:
    """genbench: generated image pairs, a preference study, metric–human agreement."""


def _device(device: str) -> str:
    from attiqa.training.distributed import resolve_device

    return str(resolve_device(device))


@app.command()
def run(
    pairs: int = typer.Option(200, "--pairs", "-n", min=1, help="Number of prompts (two images each)."),
    out: Path = typer.Option(Path("genbench_run"), "--out", "-o", help="Run folder (rerun to resume)."),
    model: str = typer.Option(
        "stabilityai/stable-diffusion-2-1", help="Hugging Face model id, or PATH to a local diffusers folder."
    ),
    template: Path | None = typer.Option(None, help="Prompt template text file (default: supp. §D.1)."),
    candidates: Path | None = typer.Option(
        None, help="JSON file: template slot -> list of candidates (default: supp. Table 13)."
    ),
    seed: int = typer.Option(0, help="Seed for the prompt draw and the image seeds."),
    scheduler: str = typer.Option(
        "default", help="default (the model's) | ddim | euler | euler-a | dpm++ | unipc | ..."
    ),
    steps: int = typer.Option(50, min=1, help="Denoising steps."),
    guidance: float = typer.Option(7.5, help="Classifier-free guidance scale."),
    width: int = typer.Option(768, min=8, help="Image width (multiple of 8)."),
    height: int = typer.Option(768, min=8, help="Image height (multiple of 8)."),
    dtype: str = typer.Option("auto", help="auto (fp16 on GPU, fp32 on CPU) | fp32 | fp16 | bf16"),
    negative_prompt: str = typer.Option("", help="Negative prompt (none by default, as in the paper)."),
    batch_size: int = typer.Option(2, min=1, help="Images per pipeline call."),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N | mps"),
) -> None:
    """Generate two images per prompt with Stable Diffusion (default 2.1) into a resumable run folder.

    Writes images/, manifest.jsonl and manifest.csv (prompt, seeds, model, settings per pair) and run.json.
    Rerunning the same command keeps every finished image and makes the rest.
    """
    from genbench.generate import GenSettings, generate_run
    from genbench.prompts import load_prompt_spec

    spec = load_prompt_spec(template, candidates)
    settings = GenSettings(
        model=model,
        scheduler=scheduler,
        steps=steps,
        guidance=guidance,
        width=width,
        height=height,
        dtype=dtype,
        negative_prompt=negative_prompt,
        seed=seed,
    )
    dev = _device(device)
    with progress_task("generating", total=2 * pairs) as advance:
        result = generate_run(out, spec, settings, pairs, batch_size=batch_size, device=dev, on_image=advance)
    console.print(
        f"{out}: {result.made} images made, {result.kept} already there, "
        f"{len(result.failed)} failed; manifest: {out / 'manifest.jsonl'}"
    )
    for f in result.failed[:10]:
        console.print(f"[yellow]failed[/] {f}", highlight=False)
    if result.interrupted:
        console.print("[yellow]interrupted — rerun the same command to continue")
        raise typer.Exit(130)
    if result.failed:
        console.print("[yellow]rerun the same command to retry the failed images")
        raise typer.Exit(1)


def main() -> None:
    from attiqa.cli import run_app

    run_app(app)


if __name__ == "__main__":
    main()
