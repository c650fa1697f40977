"""Checkpoints: safetensors for tensors + a JSON model card. Loading never unpickles.

Layout of a checkpoint ``model.safetensors``:
- the tensors (fp32 or fp16),
- the model card embedded in the safetensors header metadata under ``attiqa_card`` (so one file is
  self-describing), and the same card beside it as ``model.json`` for people and tools to read.

Training state for ``--resume`` (optimizer moments, epoch, RNG-free bookkeeping) is saved the same
way: tensors into safetensors, everything else into JSON.

Named models (a name -> bundled file or URL + SHA-256) are rows of the zoo: :mod:`attiqa.scorers.zoo`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save_file

from attiqa.errors import ModelLoadError
from attiqa.io.atomic import atomic_path, write_json_atomic
from attiqa.io.hashes import CARD_KEY, file_version, read_whole, safetensors_header, sha256_of, tensors_digest

FORMAT_VERSION = 1


def save_safetensors(
    tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None
) -> None:
    """safetensors' ``save_file``, its I/O error (a full disk: "No space left on device") raised as the
    ``OSError`` it is, so an atomic write names the file in one line (was SafetensorError's traceback)."""
    try:
        save_file(tensors, str(path), metadata=metadata)
    except SafetensorError as exc:
        code = re.search(r"\(os error (\d+)\)", str(exc))
        if code is None:
            raise
        raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), str(path)) from None


def card_path_for(weights: str | Path) -> Path:
    return Path(weights).with_suffix(".json")


def save_checkpoint(
    path: str | Path, tensors: dict[str, torch.Tensor], card: dict[str, Any], half: bool = False
) -> Path:
    """Write ``path`` (.safetensors) and its ``.json`` card atomically; returns the weights path. With
    ``half``, weights and biases (``*.weight`` / ``*.bias``: nearly all the bytes) are stored as fp16 unless
    a value would overflow; every other float tensor — statistics such as BatchNorm's running means and a
    ridge head's feature centres and spreads — stays fp32: fp16's 3 significant digits and 6e-8 floor are
    not enough for them (a ridge head divides by spreads of 1e-8, and centres rounded by 1e-3 shifted the
    shipped attiqa-agiqa3k's MOS by a constant 7.9)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    from attiqa import __version__

    card = {"format_version": FORMAT_VERSION, "attiqa_version": __version__, **card}
    out: dict[str, torch.Tensor] = {}
    for k, v in tensors.items():
        v = v.detach().cpu()
        if half and v.is_floating_point() and _fits_half(k, v):
            v = v.half()
        out[k] = v.contiguous()
    with atomic_path(path) as tmp:
        save_safetensors(out, tmp, {CARD_KEY: json.dumps(card, default=str)})
    write_json_atomic(card_path_for(path), card)
    return path


def _fits_half(name: str, v: torch.Tensor) -> bool:
    return name.endswith((".weight", ".bias")) and not bool((v.half().isinf() & v.isfinite()).any())


_DATASET_NAME = re.compile(r"[A-Za-z][\w.-]+")  # NAME of NAME:ROOT (`attiqa datasets`), not a drive letter


def portable_path(value: str) -> str:
    """An absolute path as one that means something on another machine: relative to the current folder
    when it lies inside it, else its last two components (``/data/clive-dev/images`` -> ``clive-dev/images``,
    the dataset-level part); a named dataset's ``NAME:ROOT`` (the card's fine-tuning source) keeps its name.
    Relative paths and other strings (a URL too) are unchanged."""
    name, sep, rest = value.partition(":")
    if sep and _DATASET_NAME.fullmatch(name) and os.path.isabs(rest) and not rest.startswith("//"):
        return f"{name}:{portable_path(rest)}"
    if not value or not os.path.isabs(value):
        return value
    p = Path(value)
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(Path(*p.parts[-2:])) if len(p.parts) > 2 else p.name


def portable_card(card: Any) -> Any:
    """A card with every absolute path made portable (:func:`portable_path`), for shared or bundled models:
    a card must not carry the paths of the machine it was trained on."""
    if isinstance(card, dict):
        return {k: portable_card(v) for k, v in card.items()}
    if isinstance(card, list):
        return [portable_card(v) for v in card]
    return portable_path(card) if isinstance(card, str) else card


def read_card(path: str | Path) -> dict[str, Any]:
    """The model card of a checkpoint, from its header (the sidecar JSON is for humans)."""
    path = Path(path)
    with _opened(path) as f:
        return _card_of(path, f.metadata() or {})


def _opened(path: Path, device: str | torch.device = "cpu") -> Any:
    """``safe_open`` of a checkpoint; a file safetensors cannot read is one line naming it."""
    try:
        return safe_open(str(path), framework="pt", device=str(device))
    except Exception as exc:  # noqa: BLE001
        raise _unreadable(path, exc) from None


def _unreadable(path: Path, exc: Exception) -> ModelLoadError:
    """The one line of a checkpoint that cannot be read (``exc``: the reader's error)."""
    if path.is_file() and not os.access(path, os.R_OK):  # safetensors says "No such file or directory"
        return ModelLoadError(
            f"{path}: cannot be read (permission denied) — give yourself read permission (chmod u+r {path})"
        )
    return ModelLoadError(
        f"{path}: not a readable safetensors checkpoint ({exc}) — pass a .safetensors file written by "
        "attiqa (train, export) or isp-tune, whole (a copy may be truncated)"
    )


def _card_of(path: Path, meta: Mapping[str, str], side: bytes | None = None) -> dict[str, Any]:
    """The card in a checkpoint's header ``meta``, else the ``.json`` beside it ({} without either;
    ``side``: its bytes when the caller has read them)."""
    try:
        if CARD_KEY in meta:
            card = json.loads(meta[CARD_KEY])
        elif side is not None:
            card = json.loads(side.decode("utf-8"))
        elif card_path_for(path).exists():
            card = json.loads(card_path_for(path).read_text(encoding="utf-8"))
        else:
            return {}
    except (ValueError, OSError) as exc:
        raise ModelLoadError(f"{path}: the model card is not valid JSON ({exc})") from None
    if not isinstance(card, dict):
        raise ModelLoadError(f"{path}: the model card is not a JSON object (got {type(card).__name__})")
    return card


def card_copy_current(path: str | Path, card: Mapping[str, Any]) -> bool:
    """Whether the ``.json`` card beside ``path`` is ``card``, the one in its header (:func:`read_card`, read
    by the caller) — same epoch and stage: the copy is written just after the weights, so an interruption
    between the two leaves the previous card there."""
    try:
        copy = json.loads(card_path_for(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(copy, dict) and all(copy.get(k) == card.get(k) for k in ("epoch", "stage"))


def load_checkpoint(
    path: str | Path, device: str | torch.device = "cpu", as_stored: bool = False
) -> tuple[dict[str, torch.Tensor], dict]:
    """Load tensors (as float32) and the card of a checkpoint written by :func:`save_checkpoint`, from one
    opening of the file (the card and the tensors of one version of it). ``as_stored``: fp16 / bf16 tensors
    as they are stored, for a copy that keeps them so (`attiqa export`: the shipped model's fp16 statistics
    in fp32 were other tensors, :func:`tensors_sha256`, to the one test of "is this a shipped model")."""
    path = _loadable(path)
    tensors: dict[str, torch.Tensor] = {}
    with _opened(path, device) as f:
        card = _card_of(path, f.metadata() or {})
        for k in f.keys():  # noqa: SIM118 (safe_open is not a dict)
            t = f.get_tensor(k)
            tensors[k] = t if as_stored else _as_float(t)  # one at a time: the stored copy freed
    return tensors, card


def _loadable(path: str | Path) -> Path:
    """``path`` when it may be loaded: a missing file and a pickle are one line each."""
    path = Path(path)
    if path.is_symlink() and not path.exists():  # os.stat's ELOOP / ENOENT: "not found" named no link
        raise ModelLoadError(
            f"{path}: a symbolic link that leads to no file (a loop, or its target is gone) — point it at "
            f"the checkpoint (ln -sfn FILE.safetensors {path}) or pass the file itself"
        )
    if not path.exists():
        raise ModelLoadError(
            f"{path}: checkpoint not found — check the path or use a model name from `attiqa models`"
        )
    if path.suffix.lower() in (".pt", ".pth", ".ckpt", ".bin", ".pkl"):  # model.PT too
        raise ModelLoadError(
            f"{path}: pickle-based checkpoints are not loaded (unsafe), and no attiqa command converts one: "
            "a model is the .safetensors attiqa train or attiqa export writes, its ATTIQA card inside (a "
            "state dict saved as safetensors has none and is refused too) — train one with attiqa train "
            "(torchvision's ResNet-50 .pth can be its model.backbone_weights), or use one of attiqa models"
        )
    return path


def load_checkpoint_hashed(path: str | Path) -> tuple[dict[str, torch.Tensor], dict, CheckpointHashes]:
    """:func:`load_checkpoint`'s tensors (on the CPU, as float32) and card, and :func:`checkpoint_hashes`
    of the same bytes, for a scorer to keep: hashed after loading, a checkpoint saved again in between (a
    training run's ``last.safetensors``) recorded the new version's identity against the old one's scores."""
    path = _loadable(path)
    tensors, hashes, meta, side = _read_once(path)
    return tensors, _card_of(path, meta, side), hashes


# ----------------------------------------------------------------------------------------------------------
# Training state (resume)


def save_training_state(
    path: str | Path, optimizer_state: dict, extra: dict[str, Any], model_state: dict | None = None
) -> None:
    """Save an optimizer ``state_dict`` and bookkeeping as safetensors + JSON (no pickle); with
    ``model_state`` the weights too (keys ``model.*``), so one atomic file is a complete resume point."""
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {f"model.{k}": v.contiguous() for k, v in (model_state or {}).items()}
    state_meta: dict[str, dict[str, Any]] = {}
    for pid, st in optimizer_state.get("state", {}).items():
        meta: dict[str, Any] = {}
        for key, val in st.items():
            if torch.is_tensor(val):
                tensors[f"state.{pid}.{key}"] = val.detach().cpu().contiguous()
            else:
                meta[key] = val
        state_meta[str(pid)] = meta
    doc = {"param_groups": optimizer_state.get("param_groups", []), "state_meta": state_meta, "extra": extra}
    with atomic_path(path) as tmp:
        save_safetensors(tensors, tmp, {"training_state": json.dumps(doc, default=str)})


class TrainingStateFile:
    """A training state file (:func:`save_training_state`) opened once: its bookkeeping (``extra``) read now,
    its tensors by :meth:`load` from the same opening — so a check of the bookkeeping and the resume that
    continues from the file read its header once, and both are about the same file (one saved over it in
    between is not mixed in). Unreadable: OSError, ValueError, KeyError or SafetensorError. The opening (a
    memory map) lasts until :meth:`close`: the trainer continuing from it closes it once read, before its
    first save replaces the file (kept, it held the replaced file's disk space for the run; on Windows the
    replace of an open file is refused); :meth:`load`'s tensors are copies, not views of the map."""

    def __init__(self, path: str | Path) -> None:
        self.path, self.closed = Path(path), False
        self.file = safe_open(str(path), framework="pt")
        try:
            self.doc: dict[str, Any] = json.loads((self.file.metadata() or {})["training_state"])
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> TrainingStateFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Let the file go (:attr:`extra` stays readable; :meth:`load` no longer). Again: nothing."""
        self.file.__exit__(None, None, None)
        self.closed = True

    @property
    def extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = self.doc["extra"]
        return extra

    def load(self, with_model: bool = False) -> tuple:
        """(optimizer state_dict, extra), and with ``with_model`` the weights as a third item (None in a
        state file saved without them)."""
        # copies: a tensor safetensors gives is a view of the file's memory map, which an optimizer's moments
        # (load_state_dict keeps them as given) held, the replaced file with it, for the whole run
        tensors = {k: self.file.get_tensor(k).clone() for k in self.file.keys()}  # noqa: SIM118
        state: dict[int, dict[str, Any]] = {}
        for pid, meta in self.doc["state_meta"].items():
            state[int(pid)] = dict(meta)
        weights = {k[len("model.") :]: t for k, t in tensors.items() if k.startswith("model.")}
        for k, t in tensors.items():
            if not k.startswith("model."):
                _, pid, key = k.split(".", 2)
                state.setdefault(int(pid), {})[key] = t
        opt = {"state": state, "param_groups": self.doc["param_groups"]}
        return (opt, self.extra, weights or None) if with_model else (opt, self.extra)


def training_state_extra(path: str | Path) -> dict[str, Any]:
    """The bookkeeping of a training state file (:func:`save_training_state`'s ``extra``), without its
    tensors."""
    with TrainingStateFile(path) as saved:
        return saved.extra


def load_training_state(path: str | Path, with_model: bool = False) -> tuple:
    """Inverse of :func:`save_training_state` (:meth:`TrainingStateFile.load`)."""
    with TrainingStateFile(path) as saved:
        return saved.load(with_model)


# ----------------------------------------------------------------------------------------------------------
# Hashes (the cache folder: attiqa.io.cache_home)


def weights_sha256(path: str | Path) -> str:
    """SHA-256 of a checkpoint's file: :func:`checkpoint_hashes`' (one reading for every identity of it,
    once per version of the file per process: a file rewritten or replaced is hashed again). Another kind
    of weights file (open_clip's ``.bin``) is hashed as a stream: :func:`sha256_of`."""
    return checkpoint_hashes(path).sha256


def tensors_sha256(path: str | Path) -> str:
    """SHA-256 of a checkpoint's tensors alone — their names, dtypes, shapes and bytes, not its card: a copy
    or `attiqa export` that rewrites the card (another name, paths made portable) keeps it, a retraining
    changes it. One of :func:`checkpoint_hashes`, cached with them; its formula is
    :func:`~attiqa.io.hashes.tensors_digest`, which :func:`~attiqa.io.hashes.safetensors_hashes` gives
    without torch."""
    return checkpoint_hashes(path).tensors


def values_sha256(path: str | Path) -> str:
    """SHA-256 of a checkpoint's tensors as :func:`load_checkpoint` gives them (fp16 / bf16 as float32),
    neither its card nor the dtypes they are stored in: an `attiqa export` of a model whose statistics were
    stored fp16 kept them fp32 (the same values) before session 53, which :func:`tensors_sha256` tells apart.
    For `attiqa score -o`'s record, to say "the card changed, not the weights". One of
    :func:`checkpoint_hashes`, cached with them."""
    return checkpoint_hashes(path).values


def _digest_values(tensors: Mapping[str, torch.Tensor]) -> str:
    """:func:`values_sha256` of tensors as :func:`load_checkpoint` gives them."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        t = tensors[k].contiguous()
        h.update(json.dumps([k, str(t.dtype), list(t.shape)]).encode())
        h.update(t.numpy().data)  # the tensor's bytes, not a copy of them
    return h.hexdigest()


def _as_float(t: torch.Tensor) -> torch.Tensor:
    """A stored tensor as :func:`load_checkpoint` and :func:`load_checkpoint_hashed` give it: fp16 / bf16 as
    float32."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


@dataclass(frozen=True)
class CheckpointHashes:
    """A checkpoint's hashes, all of one version of its bytes (:func:`checkpoint_hashes`)."""

    path: Path  # resolved
    sha256: str  # the file's (:func:`weights_sha256`)
    tensors: str  # :func:`tensors_sha256`
    values: str  # :func:`values_sha256`
    card_sha256: str | None  # :func:`~attiqa.io.hashes.sidecar_card_sha256`


def checkpoint_hashes(path: str | Path) -> CheckpointHashes:
    """Every hash of a checkpoint a scorer's identity holds, from ONE reading of the file (`attiqa score -o`'s
    record, eval's score-cache key): read by separate functions, a file rewritten between two readings
    (a training run's ``last.safetensors``) gave an identity half of each version. Each hash equals its own
    function's; cached as they are (on the version read, :func:`~attiqa.io.hashes.file_version`), the card
    beside it not. A loaded scorer keeps those of the bytes it loaded (:func:`load_checkpoint_hashed`)."""
    given = Path(path)
    p = given.resolve()
    st = p.stat()
    read = _READ_CACHE.get((str(p), *file_version(st)))
    if read is None:
        return _read_once(given)[1]
    file_sha, tensors, values, has_card = read
    side = card_path_for(given)
    card = None if has_card or not side.is_file() else sha256_of(side)
    return CheckpointHashes(p, file_sha, tensors, values, card)


# (resolved path, *file_version) -> (file, tensors, values hashes, a card in the header): checkpoint_hashes'
_READ_CACHE: dict[tuple[str, int, int, int, int], tuple[str, str, str, bool]] = {}


def _read_once(path: Path) -> tuple[dict[str, torch.Tensor], CheckpointHashes, dict[str, str], bytes | None]:
    """(the tensors as :func:`load_checkpoint` gives them, their :class:`CheckpointHashes`, the header's
    metadata, the bytes of the ``.json`` card beside it — read only when the header holds none) of one
    reading of ``path``; its hashes are cached on the version read (:func:`~attiqa.io.hashes.file_version`).
    The tensors are views of the bytes read, hashed where they lie: no copy of the file beside them (fp16
    ones as float32)."""
    p = path.resolve()
    try:
        data, st = read_whole(p)  # a file cut while it was read: safetensors' reading says so
    except OSError as exc:
        raise _unreadable(path, exc) from None
    table, meta = _header_of(path, data)
    has_card = CARD_KEY in meta
    start = 8 + int.from_bytes(data[:8], "little")
    stored = _tensors_in(data, start, table)
    if stored is None:  # a layout this reader does not take: safetensors' own reading, or its error
        try:
            stored = load_safetensors_bytes(bytes(data))
        except Exception as exc:  # noqa: BLE001 (safetensors' own error types)
            raise _unreadable(path, exc) from None
    loaded = {k: _as_float(t) for k, t in stored.items()}
    del stored
    with memoryview(data) as view:
        tensors = tensors_digest(table, view[start:])
    read = (hashlib.sha256(data).hexdigest(), tensors, _digest_values(loaded), has_card)
    version = (str(p), *file_version(st))
    _READ_CACHE[version] = read
    side_path = card_path_for(path)
    try:
        side = None if has_card or not side_path.is_file() else side_path.read_bytes()
    except OSError:
        side = None
    card = hashlib.sha256(side).hexdigest() if side is not None else None
    return loaded, CheckpointHashes(p, *read[:3], card), meta, side


# safetensors' dtype names :func:`_tensors_in` reads itself (any other: safetensors' reading)
_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def _tensors_in(data: bytearray, start: int, table: Mapping[str, Any]) -> dict[str, torch.Tensor] | None:
    """The tensors of a safetensors file's bytes ``data`` (its buffer from ``start``, laid out by the header's
    ``table``) as views of them; None for a layout other than safetensors' own (tightly packed, every byte
    a tensor's) or another dtype, which :func:`_read_once` leaves to safetensors."""
    out: dict[str, torch.Tensor] = {}
    spans = []
    for name, entry in table.items():
        try:
            dtype = _DTYPES[entry["dtype"]]
            shape = [int(n) for n in entry["shape"] if isinstance(n, int) and n >= 0]
            begin, end = (int(x) for x in entry["data_offsets"] if isinstance(x, int))
        except (KeyError, TypeError, ValueError):
            return None
        numel = math.prod(shape)
        if (
            len(shape) != len(entry["shape"])
            or not 0 <= begin <= end
            or end - begin != numel * dtype.itemsize
            or start + end > len(data)
        ):
            return None
        spans.append((begin, end))
        out[name] = (
            torch.frombuffer(data, dtype=dtype, count=numel, offset=start + begin).reshape(shape)
            if numel
            else torch.empty(shape, dtype=dtype)
        )
    at = 0
    for begin, end in sorted(spans):
        if begin != at:
            return None
        at = end
    return out if start + at == len(data) else None


def _header_of(path: Path, data: bytes | bytearray) -> tuple[dict[str, Any], dict[str, str]]:
    """(the tensor table, the header's ``__metadata__``: the card) of a safetensors file's ``data``."""
    parsed = safetensors_header(data)
    if parsed is None:  # safetensors' own reading says what is wrong with it
        try:
            load_safetensors_bytes(bytes(data))
        except Exception as exc:  # noqa: BLE001 (safetensors' own error types)
            raise _unreadable(path, exc) from None
        raise _unreadable(path, ValueError("its header is not a JSON object"))
    return parsed
