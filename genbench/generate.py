"""Image pairs from a text-to-image model (ATTIQA §5.1, supp. §D.1): two images per prompt, two seeds.

The paper uses Stable Diffusion 2.1 and 200 pairs; it gives no sampler settings, so the defaults here are
the model's own scheduler, 50 steps, guidance 7.5 and 768x768 (SD 2.1's native size) — **ours**, all
configurable. Seeds (ours): pair ``i`` of a run with seed ``s`` gets two distinct seeds drawn from
``numpy.random.default_rng([s, i])``; noise is drawn on the CPU so a seed gives the same image on any device.

A run folder holds ``run.json`` (settings), ``images/<pair>_{a,b}.png`` and the manifest
(``manifest.jsonl`` + ``manifest.csv``: prompt, seeds, model, settings, and its images'
sizes and SHA-256 per pair). Rerunning the same command continues an interrupted run: finished images
(written atomically) are kept, missing or damaged ones are made.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from attiqa.errors import AttiqaError, ConfigError, ModelLoadError
from attiqa.io.atomic import atomic_path, output_folder, remove_orphan_temps, write_json_atomic
from attiqa.progress import Advance
from genbench.files import shell_arg
from genbench.manifest import (
    IMAGE_ROOT_FILE,
    IMPORT_UNFINISHED,
    RUN_FILE,
    SIDES,
    read_records,
    write_manifest,
)
from genbench.prompts import Prompt, PromptSpec, draw_prompts
from genbench.vote.store import check_votes_kept

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline

DEFAULT_MODEL = "stabilityai/stable-diffusion-2-1"
IMAGE_DIR = "images"

# short names for diffusers scheduler classes (any class name from diffusers is accepted too)
SCHEDULERS = {
    "ddim": "DDIMScheduler",
    "pndm": "PNDMScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler-a": "EulerAncestralDiscreteScheduler",
    "dpm++": "DPMSolverMultistepScheduler",
    "lms": "LMSDiscreteScheduler",
    "heun": "HeunDiscreteScheduler",
    "unipc": "UniPCMultistepScheduler",
}
DTYPES = ("auto", "fp32", "fp16", "bf16")
SUM_FIELDS = ("size", "content")  # a manifest record's size_a, content_a, ...: its images as written


@dataclass
class GenSettings:
    """Everything that changes the pixels; a run keeps these fixed across resumes."""

    model: str = DEFAULT_MODEL
    scheduler: str = "default"  # "default" = the model's own
    steps: int = 50
    guidance: float = 7.5
    width: int = 768
    height: int = 768
    dtype: str = "auto"  # resolved to fp16 on CUDA, fp32 elsewhere, before it is recorded
    negative_prompt: str = ""
    seed: int = 0


OUT_OF_MEMORY = ("out of memory", "can't allocate memory", "cannot allocate memory")
"""Words of torch's allocation failures (CUDA's ``OutOfMemoryError``, the CPU allocator's, MPS's)."""


def out_of_memory(exc: BaseException) -> bool:
    """Whether a pipeline call failed for want of memory: the same size fails again, whatever the prompt."""
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or any(words in text for words in OUT_OF_MEMORY)


@dataclass
class GenResult:
    run_dir: Path
    pairs: int
    made: int = 0
    kept: int = 0
    failed: list[str] = field(default_factory=list)  # "pair_id/side: reason"
    long_prompts: list[str] = field(default_factory=list)  # pairs whose prompt the text encoder cut
    token_limit: int = 0  # how many tokens of a prompt it reads
    damaged: list[str] = field(default_factory=list)  # images found on disk that did not decode: made again
    decoded: int = 0  # images found on disk without a record of their size and hash, or unlike it: decoded
    interruption: KeyboardInterrupt | None = None  # Ctrl-C / SIGTERM: finished pairs kept; the caller says so
    out_of_memory: bool = False  # a batch ran out of memory: the run stopped there (the rest would too)

    def count_made(self) -> None:
        """An image's ``on_commit``: counted in its rename's own step, the count is of the images on disk."""
        self.made += 1


def pair_seeds(seed: int, index: int) -> tuple[int, int]:
    rng = np.random.default_rng([seed, index])
    a = int(rng.integers(0, 2**31 - 1))
    b = a
    while b == a:
        b = int(rng.integers(0, 2**31 - 1))
    return a, b


def pair_id(index: int) -> str:
    return f"p{index:04d}"


def image_name(pid: str, side: str) -> str:
    return f"{IMAGE_DIR}/{pid}_{side}.png"


def _offline_message(model: str) -> str:
    return (
        f"cannot load {model!r} from the Hugging Face Hub (offline, or the weights are not cached) — "
        f"on a connected machine run `hf download {model} --local-dir sd21`, copy the folder here and "
        "pass --model sd21 (any diffusers pipeline folder with model_index.json works)"
    )


@contextlib.contextmanager
def quiet_log(*names: str, level: int = logging.ERROR) -> Iterator[None]:
    """Hold libraries' loggers ``names`` to ``level`` while the block runs (what they say, genbench says)."""
    logs = [logging.getLogger(name) for name in names]
    levels = [log.level for log in logs]
    for log in logs:
        log.setLevel(level)
    try:
        yield
    finally:
        for log, level in zip(logs, levels, strict=True):
            log.setLevel(level)


# transformers' "Token indices sequence length is longer than the specified maximum ..." for a long prompt
TOKENIZER_LOG = "transformers.tokenization_utils_base"


def long_prompts(pipe: StableDiffusionPipeline, records: list[dict]) -> tuple[list[str], int]:
    """The pairs whose prompt is longer than the text encoder reads (CLIP: 77 tokens), and that length.
    diffusers cuts them and logs the cut-off text per batch (kilobytes a line); the run says it once."""
    tokenizer = getattr(pipe, "tokenizer", None)
    limit = getattr(tokenizer, "model_max_length", None)
    if tokenizer is None or not isinstance(limit, int):
        return [], 0
    with quiet_log(TOKENIZER_LOG):
        return [r["pair_id"] for r in records if len(tokenizer(r["prompt"]).input_ids) > limit], limit


def refuse_file(model: str) -> None:
    """One line for ``--model FILE``: a file is never a pipeline (a file was called "not a diffusers pipeline
    folder", which reads as a folder of the wrong kind). Torch-free: ``genbench run`` says it before it
    resolves ``--device`` (torch), a finished run's folder check or not."""
    path = Path(model).expanduser()
    if path.is_file():
        hint = (
            f"pass its folder, --model {shell_arg(str(path.parent))}"
            if path.name == "model_index.json"
            else "pass the pipeline's folder (the one holding model_index.json, unet/, vae/, text_encoder/), "
            f"e.g. as made by `hf download {DEFAULT_MODEL} --local-dir DIR`; a single checkpoint file is "
            "not a pipeline"
        )
        raise ModelLoadError(f"{model}: a file, not a folder — {hint}")


def pipeline_source(model: str) -> tuple[Path, bool]:
    """``--model`` as a local pipeline folder (path, True) or a Hub id (path, False); one line for what is
    neither: a name without an owner, a missing folder, a folder without model_index.json, or a file
    (:func:`refuse_file`)."""
    path = Path(model).expanduser()
    looks_local = path.exists() or model.startswith((".", "/", "~")) or model.count("/") > 1
    if not looks_local and "/" not in model:
        raise ModelLoadError(
            f"{model}: no such folder — pass --model PATH to a diffusers pipeline folder or a Hub id such as "
            f"{DEFAULT_MODEL}"
        )
    refuse_file(model)
    if looks_local and not (path / "model_index.json").is_file():
        what = "not a diffusers pipeline folder (no model_index.json)" if path.exists() else "no such folder"
        raise ModelLoadError(
            f"{model}: {what} — pass the folder made by "
            f"`hf download {DEFAULT_MODEL} --local-dir DIR` or by pipeline.save_pretrained(DIR)"
        )
    return path, looks_local


def load_pipeline(
    model: str, dtype: str = "fp32", device: str = "cpu", scheduler: str = "default"
) -> StableDiffusionPipeline:
    """A diffusers ``StableDiffusionPipeline`` from a Hub id or a local folder; one-line errors otherwise."""
    path, looks_local = pipeline_source(model)  # before diffusers and torch load
    try:
        import diffusers
        import torch
    except ImportError:
        raise AttiqaError("genbench needs diffusers and transformers — `pip install 'attiqa[gen]'`") from None
    torch_dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    sched_cls = None
    if scheduler != "default":  # checked before the (slow) model load
        sched_cls = getattr(diffusers, SCHEDULERS.get(scheduler.lower(), scheduler), None)
        if sched_cls is None or not hasattr(sched_cls, "from_config"):
            raise ConfigError(
                f"unknown scheduler {scheduler!r} — use one of {', '.join(SCHEDULERS)} "
                "or a diffusers scheduler class name"
            )
    diffusers.utils.logging.disable_progress_bar()  # ours is the one bar
    with contextlib.suppress(ImportError):
        import transformers

        transformers.utils.logging.disable_progress_bar()
    # diffusers logs "Couldn't connect to the Hub ... Will try to load from local cache." before failing
    # offline: two lines ahead of ours, which says what to do (and when the cache has it, noise)
    try:
        with (
            quiet_log("diffusers.pipelines.pipeline_utils"),
            # a component's missing weights: "An error occurred while trying to fetch …" (an error) and
            # "Defaulting to unsafe serialization …" ahead of the exception, which ours says
            quiet_log("diffusers.models.modeling_utils", level=logging.CRITICAL),
            warnings.catch_warnings(),
        ):  # newer diffusers rename torch_dtype; the old name works everywhere
            warnings.simplefilter("ignore", FutureWarning)
            pipe = diffusers.StableDiffusionPipeline.from_pretrained(
                str(path) if looks_local else model,
                torch_dtype=torch_dtype,
                safety_checker=None,
                requires_safety_checker=False,
                use_safetensors=True,  # never unpickle a folder's .bin weights (the project's rule)
            )
    except Exception as exc:  # hub / network errors come from several libraries; others re-raised
        network = type(exc).__module__.split(".")[0] in ("huggingface_hub", "httpx", "requests", "urllib3")
        if not isinstance(exc, (OSError, ValueError)) and not network:
            raise
        if looks_local:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            pickled = sorted(p.relative_to(path).as_posix() for p in path.glob("*/*.bin"))
            if pickled and isinstance(exc, OSError):
                raise ModelLoadError(
                    f"{model}: {pickled[0]} is pickled weights (.bin), which genbench does not load — save "
                    "the pipeline as safetensors (`pipeline.save_pretrained(DIR)`, the default) or fetch the "
                    f"safetensors files (`hf download {DEFAULT_MODEL} --local-dir {shell_arg(model)}`)"
                ) from None
            again = (  # a file missing or unreadable (not a pipeline of another kind: a ValueError)
                f" — a download cut short or a damaged file: fetch it again (the default model: `hf download "
                f"{DEFAULT_MODEL} --local-dir {shell_arg(model)}` again fetches missing files; delete a "
                "damaged one first)"
                if isinstance(exc, OSError)
                else ""
            )
            raise ModelLoadError(f"{model}: cannot load the pipeline ({first}){again}") from None
        raise ModelLoadError(_offline_message(model)) from None
    if sched_cls is not None:
        pipe.scheduler = sched_cls.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def resolve_dtype(dtype: str, device: str) -> str:
    if dtype not in DTYPES:
        raise ConfigError(f"--dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    if dtype == "auto":
        return "fp16" if str(device).startswith("cuda") else "fp32"
    return dtype


def plan_records(spec: PromptSpec, settings: GenSettings, n_pairs: int) -> list[dict]:
    """The manifest record of every pair of the run (deterministic from the settings and seed)."""
    prompts: list[Prompt] = draw_prompts(spec, n_pairs, settings.seed)
    shared = {k: v for k, v in asdict(settings).items() if k != "seed"}
    records = []
    for i, prompt in enumerate(prompts):
        pid = pair_id(i)
        sa, sb = pair_seeds(settings.seed, i)
        records.append(
            {
                "pair_id": pid,
                "prompt": prompt.text,
                **prompt.slots,
                "seed_a": sa,
                "seed_b": sb,
                "image_a": image_name(pid, "a"),
                "image_b": image_name(pid, "b"),
                **shared,
            }
        )
    return records


def _made_images(run_dir: Path) -> list[Path]:
    folder = run_dir / IMAGE_DIR
    return sorted(folder.glob("*.png")) if folder.is_dir() else []


def recorded_sums(run_dir: Path) -> dict[str, tuple[int, str]]:
    """Each image's size and content key as the manifest recorded them when it was written (image name ->
    (bytes, ``sha256:…``)); none for a run of an earlier version, or a manifest that does not parse (it is
    written again): its images are then decoded."""
    try:
        records = read_records(run_dir)
    except AttiqaError:
        return {}
    sums = {}
    for r in records:
        for s in SIDES:
            image, size, key = r.get(f"image_{s}"), r.get(f"size_{s}"), r.get(f"content_{s}")
            if isinstance(image, str) and type(size) is int and isinstance(key, str):
                sums[image] = (size, key)
    return sums


@dataclass
class ImageCheck:
    """What :func:`check_images` found: every kept image's sums, the damaged ones, how many it decoded."""

    sums: dict[str, tuple[int, str]] = field(default_factory=dict)
    damaged: list[tuple[dict, str, str]] = field(default_factory=list)  # (record, side, why)
    decoded: int = 0


def check_images(run_dir: Path, records: list[dict], recorded: dict[str, tuple[int, str]]) -> ImageCheck:
    """The run's images on disk, checked against the size and content key recorded when each was written:
    a resume kept a truncated or emptied copy (a copy stopped midway, a bad disk) as "already there" for
    good, which `score` then skipped and `vote` hid. A file of its recorded size and hash is whole (no
    decode: decoding every image again made each resume slow at FiveK scale); one without a record (an
    earlier version's run, a half-made pair) or unlike it is decoded — kept and recorded if it decodes,
    otherwise damaged: made again from its seed (the same pixels as the first time)."""
    from attiqa.io.images import content_key, load_image

    found = ImageCheck()
    for r in records:
        for s in SIDES:
            name = r[f"image_{s}"]
            path = run_dir / name
            if not path.is_file():
                continue
            known = recorded.get(name)
            try:
                if known is not None and path.stat().st_size == known[0] and content_key(path) == known[1]:
                    found.sums[name] = known
                    continue
                found.decoded += 1
                load_image(path)
                found.sums[name] = (path.stat().st_size, content_key(path))
            except AttiqaError as exc:
                found.damaged.append((r, s, f"{name}: {getattr(exc, 'reason', exc)}"))
            except OSError as exc:
                found.damaged.append((r, s, f"{name}: {exc.strerror or exc}"))
    return found


def _keep_pairs(run_dir: Path) -> str:
    """The fix when a smaller ``--pairs`` leaves out pairs people voted on: the count that keeps them all
    (pair ``pNNNN`` is the same prompt and seeds at any --pairs above NNNN)."""
    from genbench.vote.store import VOTES_DB, VoteStore

    db = run_dir / VOTES_DB
    voted = [v["pair_id"] for v in VoteStore(db, read_only=True).votes()] if db.is_file() else []
    needed = max((int(p[1:]) + 1 for p in voted if re.fullmatch(r"p\d{4,}", p)), default=0)
    pairs = f"--pairs {needed} (or more)" if needed else "the --pairs it was made with"
    return f"rerun with {pairs} to keep them — each pair keeps its prompt and seeds — or pass another --out"


def _check_resume(run_dir: Path, header: dict) -> None:
    """Refuse to continue a run with other settings — unless it has no image yet (say the first attempt
    failed to load the model): then nothing would be mixed, and the new settings replace the old."""
    path = run_dir / RUN_FILE
    if (run_dir / IMPORT_UNFINISHED).exists():  # an import killed before its other files: the run went on
        raise ConfigError(  # and its manifest write removed the marker
            f"{run_dir}: an import into this folder did not finish — rerun that import command, or pass "
            "another --out to generate images"
        )
    if (run_dir / IMAGE_ROOT_FILE).exists() or (not path.exists() and read_records(run_dir)):
        raise ConfigError(
            f"{run_dir} holds imported pairs, not a generated run — pass another --out to generate images"
        )
    if not path.exists() or not _made_images(run_dir):
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        raise AttiqaError(f"{path}: unreadable — remove it to start the run again") from None
    diffs = [
        f"{k}={old.get('settings', {}).get(k)!r} (now {v!r})"
        for k, v in header["settings"].items()
        if old.get("settings", {}).get(k) != v
    ]
    if old.get("prompts") != header["prompts"]:
        diffs.append("the prompt template/candidates")
    if diffs:
        raise ConfigError(
            f"{run_dir} was made with {'; '.join(diffs)} — rerun with the same options to continue it, "
            "or pass another --out"
        )


def generate_run(
    run_dir: Path,
    spec: PromptSpec,
    settings: GenSettings,
    n_pairs: int,
    batch_size: int = 2,
    device: str = "cpu",
    on_image: Advance | None = None,
    pipeline: StableDiffusionPipeline | None = None,
    on_start: Callable[[int], None] | None = None,
) -> GenResult:
    """Make every missing image of the run, batch by batch, keeping the manifest current.
    ``on_start(kept)``: once, before any is made, with the images found on disk (a bar counts them from its
    first frame: :class:`attiqa.progress.LateBar`); ``on_image(n)`` after each batch made.

    ``pipeline`` lets a caller pass an already-built diffusers pipeline (otherwise it is loaded from
    ``settings.model``). The manifest lists the pairs whose two images both exist.
    """
    run_dir = Path(run_dir)
    if settings.width % 8 or settings.height % 8:
        raise ConfigError(f"--width/--height must be multiples of 8 (got {settings.width}x{settings.height})")
    if settings.steps < 1:
        raise ConfigError("--steps must be at least 1")
    if not math.isfinite(settings.guidance):  # NaN noise predictions, and `null` in run.json: no resume
        raise ConfigError(
            f"--guidance must be a finite number (got {settings.guidance}) — e.g. 7.5, the default"
        )
    settings.dtype = resolve_dtype(settings.dtype, device)
    records = plan_records(spec, settings, n_pairs)
    header = {
        "settings": asdict(settings),
        "prompts": {"template": spec.template, "candidates": spec.candidates},
        "pairs": n_pairs,
    }
    _check_resume(run_dir, header)
    check_votes_kept(run_dir, {r["pair_id"] for r in records}, _keep_pairs(run_dir), "run")
    checked = check_images(run_dir, records, recorded_sums(run_dir))
    damaged, sums = checked.damaged, checked.sums
    todo = [(r, s) for r in records for s in SIDES if not (run_dir / r[f"image_{s}"]).is_file()]
    todo += [(r, s) for r, s, _ in damaged]
    # the model first: offline or a mistyped --model, nothing is written (it left a run folder of no image
    # behind, `genbench_run/` by default, with a manifest.csv without a header)
    pipe = pipeline
    output_folder(run_dir, "--out", create=False)  # `--out FILE`: said after the model had loaded (minutes)
    if todo and pipe is None:
        pipe = load_pipeline(settings.model, settings.dtype, device, settings.scheduler)
    for r, s, _ in damaged:  # made again from its seed below; the manifest leaves its pair out meanwhile
        (run_dir / r[f"image_{s}"]).unlink(missing_ok=True)
    (run_dir / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    for folder in (run_dir, run_dir / IMAGE_DIR):  # half-written by a killed run
        remove_orphan_temps(folder)
    write_json_atomic(run_dir / RUN_FILE, header)

    def done_records() -> list[dict]:
        """The pairs whose two images are on disk, each with the size and content key its images had when
        written (checked on a resume instead of decoding them, :func:`check_images`)."""
        done = []
        for r in records:
            names = [r[f"image_{s}"] for s in SIDES]
            if all(name in sums and (run_dir / name).is_file() for name in names):
                got = {
                    f"{k}_{s}": v
                    for s, n in zip(SIDES, names, strict=True)
                    for k, v in zip(SUM_FIELDS, sums[n], strict=True)
                }
                done.append(r | got)
        return done

    result = GenResult(run_dir=run_dir, pairs=n_pairs, kept=2 * len(records) - len(todo))
    result.damaged = [why for _, _, why in damaged]
    result.decoded = checked.decoded

    write_manifest(run_dir, done_records())  # a run folder always has a manifest, even before the first image
    if on_start:  # found on disk: in the count, not in the rate (a rerun said 107.2 img/s)
        on_start(result.kept)

    def commit(got: dict[str, tuple[int, str]]) -> None:
        """An image's ``on_commit``: its sums kept and it is counted in its rename's own step."""
        sums.update(got)
        result.count_made()

    if todo:
        import torch

        from attiqa.io.images import content_key

        assert pipe is not None  # loaded above
        made = list({r["pair_id"]: r for r, _ in todo}.values())
        result.long_prompts, result.token_limit = long_prompts(pipe, made)
        try:
            for start in range(0, len(todo), batch_size):
                batch = todo[start : start + batch_size]
                gens = [torch.Generator("cpu").manual_seed(r[f"seed_{s}"]) for r, s in batch]
                try:  # the cut prompts are said once (long_prompts), not per batch by diffusers
                    with quiet_log(
                        "diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion", TOKENIZER_LOG
                    ):
                        # mypy does not see diffusers' decorated StableDiffusionPipeline.__call__
                        images = pipe(  # type: ignore[operator]
                            prompt=[r["prompt"] for r, _ in batch],
                            negative_prompt=[settings.negative_prompt] * len(batch)
                            if settings.negative_prompt
                            else None,
                            num_inference_steps=settings.steps,
                            guidance_scale=settings.guidance,
                            height=settings.height,
                            width=settings.width,
                            generator=gens,
                        ).images
                except (RuntimeError, ValueError, MemoryError) as exc:  # report, keep going — but out of
                    # memory stops (numpy's allocation failure is a MemoryError, no RuntimeError)
                    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    result.failed.extend(f"{r['pair_id']}/{s}: {reason}" for r, s in batch)
                    if out_of_memory(exc):  # every batch of this size fails alike: tried in turn, then
                        result.out_of_memory = True  # "rerun to retry", which failed the same way
                        break
                else:
                    for (r, s), img in zip(batch, images, strict=True):
                        # counted and its sums kept with the rename, no Ctrl-C between: "N images made"
                        # counts every one on disk
                        got: dict[str, tuple[int, str]] = {}
                        with atomic_path(run_dir / r[f"image_{s}"], on_commit=partial(commit, got)) as tmp:
                            img.save(tmp, format="PNG")
                            got[r[f"image_{s}"]] = (tmp.stat().st_size, content_key(tmp))
                    write_manifest(run_dir, done_records())
                if on_image:
                    on_image(len(batch))
        except KeyboardInterrupt as exc:
            result.interruption = exc
    write_manifest(run_dir, done_records())
    return result
