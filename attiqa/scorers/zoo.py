"""The model zoo: every scorer name as data — what to build, with which arguments, what it means.

Like open_clip's pretrained table and pyiqa's ``DEFAULT_CONFIGS``: an entry names a ``"module:Class"``
(or function) target, the keyword arguments it is built with, the ``ScorerInfo`` shown by ``attiqa
models``, and — for the named ATTIQA models — the weights file and its SHA-256. The built-in scorers are
the table :data:`BUILTIN` below; named models are read from ``attiqa/data/models.json`` so a shipped
model is one JSON entry. Nothing is imported until a scorer is created: the table is read without torch
(``attiqa models`` answers in a fraction of a second).

A name may carry an argument after a colon, ``NAME:ARG``; ARG becomes the target's first argument (a
CLIP spec or folder, a run folder); ``default_arg`` is used without one.

:func:`is_checkpoint` is the one rule deciding whether a ``--model`` string is a checkpoint path.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attiqa.errors import ModelLoadError, did_you_mean
from attiqa.scorer_info import ScorerInfo

if TYPE_CHECKING:
    from attiqa.io.checkpoints import CheckpointHashes

ATTIQA_TARGET = "attiqa.scorers.attiqa_scorer:AttiqaScorer"
CLIP_TARGET = "attiqa.scorers.clip_scorers:ClipAntonymScorer"
MEAN_TARGET = "attiqa.scorers.attribute_mean:AttributeMeanScorer"
CLIPIQA_SPEC = "RN50/openai"  # CLIP-IQA's original backbone
TEMU_SPEC = "ViT-L-14/openai"  # TeMu-IQA supplement Table 11
DEFAULT_CLIP_SPEC = "ViT-B-16/openai"  # the ATTIQA paper's teacher (§4.2)

BUILTIN: dict[str, dict[str, Any]] = {
    "classical": {
        "target": MEAN_TARGET,
        "kwargs": {"teacher": "classical"},
        "kind": "classical",
        "score_range": [0.0, 1.0],
        "needs": "nothing",
        "description": "mean of five hand-crafted attribute measures (Laplacian energy, RMS contrast, "
        "luminance, Hasler–Süsstrunk colourfulness, noise σ)",
    },
    "attiqa-zeroshot": {
        "target": MEAN_TARGET,
        "kwargs": {"teacher": "clip"},
        "default_arg": DEFAULT_CLIP_SPEC,
        "kind": "zero-shot",
        "score_range": [0.0, 1.0],
        "needs": f"CLIP {DEFAULT_CLIP_SPEC} (offline: --model attiqa-zeroshot:FOLDER)",
        "description": "the clip teacher: five attribute probabilities (Table 1 prompts; its misprinted "
        "'Graimy' read as 'Grainy', docs/method.md), score = their mean",
    },
    "clipiqa": {
        "target": CLIP_TARGET,
        "kwargs": {"pairs": "quality"},
        "default_arg": CLIPIQA_SPEC,
        "kind": "zero-shot",
        "score_range": [0.0, 1.0],
        "needs": f"CLIP {CLIPIQA_SPEC} (offline: --model clipiqa:FOLDER)",
        "description": "CLIP-IQA (Wang et al. 2023): P('Good photo.' vs 'Bad photo.'), ResNet at native "
        "resolution",
    },
    "clipiqa-attributes": {
        "target": CLIP_TARGET,
        "kwargs": {"pairs": "quality+attributes"},
        "default_arg": CLIPIQA_SPEC,
        "kind": "zero-shot",
        "score_range": [0.0, 1.0],
        "needs": f"CLIP {CLIPIQA_SPEC} (offline: --model clipiqa-attributes:FOLDER)",
        "description": "CLIP-IQA quality + its five attribute antonym pairs",
    },
    "temu-multilayer": {
        "target": CLIP_TARGET,
        "kwargs": {"layers": "all", "resolution": "resize"},
        "default_arg": TEMU_SPEC,
        "kind": "zero-shot",
        "score_range": [0.0, 1.0],
        "needs": f"CLIP {TEMU_SPEC} (offline: --model temu-multilayer:FOLDER)",
        "description": "TeMu-IQA supp. §13 option (c): [cls] of every ViT layer, ln_post+proj, averaged; "
        "Good/Bad photo",
    },
    "temu-layer": {
        "target": "attiqa.scorers.clip_scorers:temu_layer",
        "kwargs": {"default_spec": TEMU_SPEC},
        "default_arg": "",
        "kind": "zero-shot",
        "score_range": [0.0, 1.0],
        "needs": f"CLIP {TEMU_SPEC}; --model temu-layer:N or temu-layer:N:FOLDER",
        "description": "TeMu-IQA supp. §13 option (b): [cls] of one chosen ViT layer; Good/Bad photo",
    },
    "exiqa": {
        "target": "attiqa.exiqa.scorer:ExiqaScorer",
        "default_arg": "",
        "kind": "trained",
        "score_range": [0.0, 1.0],
        "scale": "the MOS scale of its regressor's training CSV (NaN without a regressor)",
        "needs": "a run of `attiqa train exiqa` (+ `attiqa train exiqa-regressor`): --model exiqa:RUN, or "
        "exiqa:RUN:CLIP_SPEC for its CLIP weights on a machine that cannot download them",
        "description": "ExIQA (paper 004): score = eq. 9 quality (MOS scale); 25 distortion strengths "
        "(explanation)",
    },
}

CHECKPOINT_FOLDER_CANDIDATES = (  # last, not best: best is picked on the held-out split (optimistic)
    "finetune/last.safetensors",
    "finetune/best.safetensors",
    "pretrain/model.safetensors",
    "model.safetensors",
    "last.safetensors",  # a stage's own folder (RUN/finetune): it was "holds no ATTIQA checkpoint"
    "best.safetensors",
)


@dataclass(frozen=True)
class ZooEntry:
    """One row of the zoo. ``file`` (package-relative) or ``url`` + ``sha256``: a named model's weights."""

    target: str
    info: ScorerInfo
    kwargs: dict[str, Any] = field(default_factory=dict)
    default_arg: str | None = None
    file: str | None = None
    url: str | None = None
    sha256: str | None = None
    trained_on: tuple[str, ...] = ()  # datasets (registry names) whose images the weights were fitted on

    @property
    def has_weights(self) -> bool:
        return bool(self.file or self.url)


def _entry(name: str, row: dict[str, Any], named_model: bool) -> ZooEntry:
    needs = row.get("needs") or ("bundled" if row.get("file") else f"download: {row.get('url')}")
    info = ScorerInfo(
        name=name,
        kind=row.get("kind", "trained"),
        score_range=(
            float(row.get("score_range", (0.0, 100.0))[0]),
            float(row.get("score_range", (0, 100))[1]),
        ),
        higher_is_better=bool(row.get("higher_is_better", True)),
        needs=needs,
        description=row.get("description", ""),
        scale=row.get("scale", ""),
    )
    return ZooEntry(
        target=row.get("target", ATTIQA_TARGET if named_model else ""),
        info=info,
        kwargs=dict(row.get("kwargs", {})),
        default_arg=row.get("default_arg"),
        file=row.get("file"),
        url=row.get("url"),
        sha256=row.get("sha256"),
        trained_on=tuple(row.get("trained_on", ())),
    )


def named_models() -> dict[str, dict[str, Any]]:
    """The named-model rows shipped with the package (``attiqa/data/models.json``)."""
    text = resources.files("attiqa").joinpath("data/models.json").read_text(encoding="utf-8")
    return json.loads(text)["models"]


def zoo_table() -> dict[str, ZooEntry]:
    """Every scorer name: the built-in table, then the named models."""
    table = {name: _entry(name, row, named_model=False) for name, row in BUILTIN.items()}
    table.update({name: _entry(name, row, named_model=True) for name, row in named_models().items()})
    return table


def shipped_model(identity: Mapping[str, Any]) -> ZooEntry | None:
    """The registry entry (``attiqa/data/models.json``) of the model a scorer is, else None — the one test of
    "is this a shipped model", for `attiqa eval`'s training-fit warning and `genbench agree`'s.

    When its weights were hashed, they decide: the file's ``sha256`` equal to the registry's (a byte copy
    under any name) or ``tensors_sha256`` (:func:`weights_identity`: the tensors without the card) equal to
    the shipped file's (a copy or `attiqa export` with its card rewritten). A retrain is then not taken for
    the shipped model whatever its card or file is named. A name it goes by (``name``: the one given, e.g.
    ``attiqa-agiqa3k``; ``card_name``: its card's) only when no weights were hashed (a record from before)."""
    sha, tensors = identity.get("sha256"), identity.get("tensors_sha256")
    names = {identity.get("name"), identity.get("card_name")} - {None}
    for name, entry in zoo_table().items():
        if not (sha or tensors):
            if name in names:
                return entry
        elif (entry.sha256 and entry.sha256 == sha) or (tensors and tensors == _shipped_tensors(name, entry)):
            return entry
    return None


def registry_entry_at(path: str | Path) -> ZooEntry | None:
    """The named model whose weights file ``path`` is (the package's file or the cache's download), by
    path alone: no file is hashed or fetched. A copy elsewhere is not found (`attiqa export` writes the
    scale into the copy's card)."""
    try:
        here = Path(path).resolve()
    except OSError:
        return None
    for name, entry in zoo_table().items():
        if entry.file and Path(str(resources.files("attiqa").joinpath(entry.file))).resolve() == here:
            return entry
        if entry.url and _downloaded(name).resolve() == here:
            return entry
    return None


def weights_identity(scorer: Any, name: str | None = None) -> dict[str, str | None]:
    """What :func:`shipped_model` is told of a loaded ``scorer`` (``name``: the one it was asked for): its
    card's name and, with a weights file of its own, that file's and its tensors' SHA-256 (None without),
    of the bytes it loaded (:func:`checkpoint_read`)."""
    read = checkpoint_read(scorer) if getattr(scorer, "checkpoint", None) else None
    return {
        "name": name,
        "card_name": scorer.info.name,
        "sha256": read.sha256 if read else None,
        "tensors_sha256": read.tensors if read else None,
    }


def scorer_files(name: str, read: CheckpointHashes | None = None) -> dict[str, str | None] | None:
    """What ``load_scorer(name)`` loads, by hash — for a rerun with nothing left to score (`genbench score`)
    to tell its record's scorer without loading it: a checkpoint's or a named model's file by its SHA-256
    and, for a file whose header holds no card, the ``.json`` card beside it that the loader reads
    (:func:`~attiqa.io.hashes.sidecar_card_sha256`); a weight-free zoo scorer that takes no argument
    (``classical``) by its name. ``read``: the hashes of the bytes a loaded scorer read
    (:func:`checkpoint_read`); else the files are read now, torch-free (a named model's file only when it is
    here and the registry's, :func:`resolve_weights`: never fetched). None where the files cannot be told
    so: a CLIP scorer's weights, an ExIQA run, a ``NAME:ARG``, a missing or damaged file."""
    if is_checkpoint(name):
        if read is not None:
            return _files_of(read.sha256, read.card_sha256)
        try:
            return _file_identity(checkpoint_in(Path(name)))
        except ModelLoadError:
            return None
    entry = zoo_table().get(name)
    if entry is None or not (entry.has_weights or entry.default_arg is None):
        return None
    if not entry.has_weights:
        return {"scorer": name, "sha256": None, "card_sha256": None}
    if read is not None:
        return _files_of(read.sha256, read.card_sha256) if read.sha256 == entry.sha256 else None
    if not entry.sha256 or not (entry.file or _downloaded(name).exists()):
        return None
    try:
        return _file_identity(resolve_weights(name))
    except ModelLoadError:
        return None


def _files_of(sha256: str, card_sha256: str | None) -> dict[str, str | None]:
    return {"scorer": None, "sha256": sha256, "card_sha256": card_sha256}


def _file_identity(path: Path) -> dict[str, str | None] | None:
    """:func:`scorer_files` of a weights file read now, torch-free (None: it cannot be read whole)."""
    from attiqa.io.hashes import safetensors_hashes, sidecar_card_sha256

    try:
        return _files_of(safetensors_hashes(path)[0], sidecar_card_sha256(path))
    except (OSError, ValueError):  # no such file, unreadable, not a whole safetensors file: the loader says
        return None


def checkpoint_read(scorer: Any) -> CheckpointHashes | None:
    """The hashes of the checkpoint a scorer's scores depend on (an ATTIQA model's, an ExIQA run's): those
    of the bytes it loaded (``weights_read``, :func:`~attiqa.io.checkpoints.load_checkpoint_hashed`) — the
    file may have been saved again since — else of one reading of the file now; None without a file."""
    from attiqa.io.checkpoints import CheckpointHashes, checkpoint_hashes

    kept = getattr(scorer, "weights_read", None)
    if isinstance(kept, CheckpointHashes):
        return kept
    ckpt = scorer.metadata().get("checkpoint") or getattr(scorer, "checkpoint", None)
    return checkpoint_hashes(ckpt) if ckpt and Path(ckpt).is_file() else None


def _shipped_tensors(name: str, entry: ZooEntry) -> str | None:
    """The tensors' SHA-256 of a named model's weights when they are on this machine (never downloaded),
    torch-free (:func:`~attiqa.io.hashes.safetensors_hashes`): `genbench agree` reads score files only."""
    from attiqa.io.hashes import safetensors_hashes

    if not entry.has_weights or not (entry.file or _downloaded(name).exists()):
        return None
    try:
        return safetensors_hashes(resolve_weights(name))[1]
    except (ModelLoadError, OSError, ValueError):  # a damaged installation or download: not its weights
        return None


def trained_on(identity: Mapping[str, Any]) -> tuple[str, ...]:
    """The datasets a scorer was fitted on (its :func:`shipped_model` entry's ``trained_on``): a metric
    measured on those images is its training fit, not a held-out figure."""
    entry = shipped_model(identity)
    return entry.trained_on if entry is not None else ()


def suggest(name: str, names: list[str] | None = None) -> str:
    """The tail of an unknown-name error: the close names, else every known name."""
    names = list(zoo_table()) if names is None else names
    return did_you_mean(name, names, n=3, cutoff=0.5) or f" (known names: {', '.join(sorted(names))})"


def zoo_entry(name: str) -> ZooEntry | None:
    """The zoo row ``name`` names: the name itself, or NAME of ``NAME:ARG`` (``clipiqa:FOLDER``)."""
    table = zoo_table()
    head, sep, _ = name.partition(":")
    return table.get(name) or (table.get(head) if sep else None)


def unknown_scorer(name: str) -> ModelLoadError:
    """The one line of a ``--model`` that names no scorer: the close names, else every known name. Torch-free,
    so a command can say it before its heavy work (``isp-tune -m attiqa-defualt`` probed the raws and loaded
    torch first: :func:`refuse_unknown_scorer`)."""
    return ModelLoadError(f"unknown scorer {name!r}{suggest(name)} — see `attiqa models`")


def refuse_unknown_scorer(name: str | Path | None) -> None:
    """Raise :func:`unknown_scorer` for a ``--model`` that is neither a zoo name (``NAME`` or ``NAME:ARG``)
    nor a checkpoint (:func:`is_checkpoint`); None (the default model) passes, and so does a library
    caller's checkpoint given as a ``Path`` (the loaders take one)."""
    if name is not None and zoo_entry(str(name)) is None and not is_checkpoint(name):
        raise unknown_scorer(str(name))


def is_checkpoint(name_or_path: str | Path) -> bool:
    """The one rule: a ``--model`` value is a checkpoint when it exists on disk (a file, or a run folder
    holding one) or ends in ``.safetensors`` — unless it is a zoo scorer's name with its argument
    (``clipiqa:FOLDER/open_clip_model.safetensors``, ``exiqa:RUN/exiqa.safetensors``). Anything else is a zoo
    name."""
    p = Path(name_or_path)
    if p.exists():
        return True
    head, sep, _ = str(name_or_path).partition(":")
    return p.suffix == ".safetensors" and not (sep and head in zoo_table())


def is_attiqa_model(name_or_path: str | Path | None) -> bool:
    """True for an ATTIQA checkpoint or named ATTIQA model (None = the default model): they take ``crops``."""
    if name_or_path is None or is_checkpoint(name_or_path):
        return True
    entry = zoo_table().get(str(name_or_path))
    return entry is not None and entry.target == ATTIQA_TARGET


def checkpoint_in(path: Path) -> Path:
    """A checkpoint path as given, or the checkpoint a run folder holds; its card (the ``.json`` beside
    it, which a user may pick as "the model") is refused naming the checkpoint."""
    if path.suffix == ".json" and path.with_suffix(".safetensors").is_file():
        raise ModelLoadError(
            f"{path}: a model card — pass the checkpoint beside it, {path.with_suffix('.safetensors')}"
        )
    weights = path.with_name(path.name.replace(".state.safetensors", ".safetensors"))
    if path.name.endswith(".state.safetensors") and weights.is_file():  # was "no ATTIQA model card — was it
        raise ModelLoadError(  # written by attiqa?": it was, as the state `--resume` continues from
            f"{path}: a training state (what `attiqa train --resume` continues from), not a model — pass the "
            f"checkpoint beside it, {weights}"
        )
    if not path.is_dir():
        return path
    for cand in CHECKPOINT_FOLDER_CANDIDATES:
        if (path / cand).exists():
            return path / cand
    raise ModelLoadError(
        f"{path}: folder holds no ATTIQA checkpoint ({', '.join(CHECKPOINT_FOLDER_CANDIDATES)}) — pass the "
        ".safetensors file itself, or a run folder of `attiqa train`"
    )


def checkpoint_file(name_or_path: str | Path) -> Path:
    """The one resolver of "a checkpoint, else a named model's file" (`attiqa export SRC`, `attiqa bench
    --init`): a checkpoint path or a run folder holding one (:func:`checkpoint_in`), else the named model's
    shipped or downloaded file (:func:`resolve_weights`, SHA-256 checked)."""
    if not is_checkpoint(name_or_path):
        return resolve_weights(str(name_or_path))
    path = checkpoint_in(Path(name_or_path))
    if not path.is_file():
        raise ModelLoadError(
            f"{path}: no such checkpoint — pass a .safetensors file of `attiqa train`, a run folder holding "
            "one, or a named model (see `attiqa models`)"
        )
    return path


def resolve_target(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


# ----------------------------------------------------------------------------------------------------------
# Named models' weights


def resolve_weights(name: str) -> Path:
    """Path of a named model's weights, verified against its SHA-256; downloads into the cache if needed."""
    table = zoo_table()
    entry = table.get(name)
    names = [n for n, e in table.items() if e.has_weights]
    if entry is not None and not entry.has_weights:  # `attiqa export classical x.safetensors`
        raise ModelLoadError(
            f"{name!r} is a scorer without a checkpoint of its own (named models with one: "
            f"{', '.join(sorted(names))}); or pass a path to a .safetensors checkpoint."
        )
    if entry is None:
        raise ModelLoadError(
            f"unknown model name {name!r}{suggest(name, names)}; or pass a path to a .safetensors checkpoint."
        )
    if entry.file:
        path = Path(str(resources.files("attiqa").joinpath(entry.file)))
        if not path.exists():
            raise ModelLoadError(
                f"{path}: the weights of model {name!r} are missing from the installation — reinstall attiqa"
            )
        if entry.sha256 and not _intact(path, entry.sha256):
            raise ModelLoadError(
                f"{path}: SHA-256 mismatch for the bundled model {name!r} (the installation is damaged or "
                "was modified) — reinstall attiqa"
            )
        return path
    path = _downloaded(name)
    if not path.exists():
        _download(str(entry.url), path, name)
    if entry.sha256 and not _intact(path, entry.sha256):
        raise ModelLoadError(
            f"{path}: SHA-256 mismatch for model {name!r} — delete the file and fetch it again"
        )
    return path


def _intact(path: Path, sha256: str) -> bool:
    """Whether a named model's file is the one its row names: its SHA-256, torch-free and with its tensors'
    in the same reading (:func:`~attiqa.io.hashes.safetensors_hashes`, which :func:`shipped_model` asks for
    next); a file that is no whole safetensors file (cut short, a tensor without a byte range: found in that
    reading) is not, and its fix is the mismatch's (reinstall, fetch again), not a checkpoint's."""
    from attiqa.io.hashes import safetensors_hashes

    try:
        return safetensors_hashes(path)[0] == sha256
    except (OSError, ValueError):
        return False


def _downloaded(name: str) -> Path:
    """Where a named model's download is kept (``$ATTIQA_CACHE``)."""
    from attiqa.io.cache_home import cache_dir

    return cache_dir() / f"{name}.safetensors"


def _download(url: str, dest: Path, name: str) -> None:
    import urllib.request

    from attiqa.io.atomic import atomic_path

    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=30) as resp, atomic_path(dest) as tmp:
            tmp.write_bytes(resp.read())
    except OSError as exc:
        raise ModelLoadError(
            f"cannot download model {name!r} from {url} ({exc}) — you seem to be offline: download the file "
            f"elsewhere and pass its path with --model PATH, or put it at {dest}"
        ) from None
