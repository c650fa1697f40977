"""The CLIP teacher of ATTIQA (paper §3.2): zero-shot attribute scores from antonym prompt pairs.

For an image x and the prompt pair (t_pos, t_neg) of an attribute (paper Table 1, loaded from a
prompts JSON file, see :mod:`attiqa.teachers.prompts`):

- eq. (1): ``s(x, t) = cos(E_I(x), E_T(t))``;
- eq. (2): ``score = exp(k*s(x, t_pos)) / (exp(k*s(x, t_pos)) + exp(k*s(x, t_neg)))``.

The paper prints eq. (2) without a temperature, i.e. ``k = 1`` (our default). With ``k = 1`` cosines
in [-1, 1] give scores in a narrow band around 0.5; the ranking loss of §3.4 only depends on the order
of scores between images, which every ``k > 0`` preserves, so ``k`` only changes the spread. CLIP's
own zero-shot temperature (``logit_scale.exp()``, 100 for the OpenAI models) can be used by passing
``scale=100`` (ours, not in the paper).

Model spec grammar (the part after ``clip:`` in ``--teacher clip:...``):

- ``MODEL/PRETRAINED`` — an open_clip architecture name (``open_clip.list_models()``, e.g. ``ViT-B-16``)
  and either an open_clip pretrained tag (``openai``, ``laion2b_s34b_b88k``, ...; downloaded once into
  the Hugging Face cache) or the path of a local weights file (``.safetensors`` preferred; ``.bin`` /
  ``.pt`` / ``.pth`` are read with ``torch.load(weights_only=True)``, never unrestricted unpickling).
  The paper uses ``ViT-B-16/openai`` (§4.2), the default. OpenAI weights use QuickGELU: with a file,
  name the architecture ``ViT-B-16-quickgelu`` (with a tag open_clip knows it).
  Split at the first ``/``, so an absolute path reads ``ViT-B-16-quickgelu//abs/path/model.bin``.
- ``PATH`` — an existing folder laid out like the Hugging Face open_clip repos: ``open_clip_config.json``
  (``{"model_cfg": {...}, "preprocess_cfg": {...}}``) next to the weights
  (``open_clip_model.safetensors`` preferred, else ``open_clip_pytorch_model.bin``, ...); or a weights
  file inside such a folder, to pick that file. Whatever exists on disk wins over the first form.

Offline behaviour: a tag whose weights are not in the local cache is only downloaded when the hub is
reachable (``HF_HUB_OFFLINE`` unset and a TCP connection opens within :data:`NETWORK_TIMEOUT` s);
otherwise :class:`~attiqa.errors.ModelLoadError` says how to pass a local copy — within seconds,
instead of huggingface_hub's retry loop.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from PIL import Image

from attiqa.attributes import ATTRIBUTES
from attiqa.errors import ModelLoadError, did_you_mean
from attiqa.progress import counted
from attiqa.teachers.base import Teacher
from attiqa.teachers.names import (
    DEFAULT_CLIP_SPEC,
    TEACHER_FLAG,
    WEIGHT_SUFFIXES,
    clip_path,
    no_such_clip_path,
)
from attiqa.teachers.prompts import PromptSet, prompt_set

NETWORK_TIMEOUT = 3.0
"""Seconds to wait for a TCP connection to the weights host before declaring the machine offline."""

OPEN_CLIP_CONFIG = "open_clip_config.json"
_PREFERRED_WEIGHTS = (
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "model.safetensors",
    "open_clip_pytorch_model.bin",
    "open_clip_pytorch_model.pth",
    "pytorch_model.bin",
    "model.pth",
)
_PREPROCESS_KEYS = ("mean", "std", "interpolation", "resize_mode")


@dataclass(frozen=True)
class ClipSpec:
    """A parsed model spec: ``kind`` is "tag" (model + open_clip tag), "file" (model + weights file) or
    "folder" (config folder + weights file)."""

    kind: str
    model: str | None
    pretrained: str | None
    folder: Path | None = None
    weights: Path | None = None

    def describe(self) -> str:
        if self.kind == "folder":
            return str(self.weights)
        return f"{self.model}/{self.pretrained}"


def _open_clip() -> Any:
    import open_clip

    return open_clip


def _pick_weights(folder: Path) -> Path | None:
    """The weights file of a folder: preferred names first, then any safetensors, then other formats."""
    for name in _PREFERRED_WEIGHTS:
        if (folder / name).is_file():
            return folder / name
    for suffix in WEIGHT_SUFFIXES:
        found = sorted(folder.glob(f"*{suffix}"))
        if found:
            return found[0]
    return None


def parse_clip_spec(spec: str, flag: str = "clip:") -> ClipSpec:
    """Parse the model spec grammar of the module docstring (without the ``clip:`` prefix); ``flag``: how
    the user wrote the prefix (``--model clipiqa:``), for the hints of its errors."""
    spec = spec.strip() or DEFAULT_CLIP_SPEC
    as_path = clip_path(spec)
    if as_path.is_dir():
        if not (as_path / OPEN_CLIP_CONFIG).is_file():
            raise ModelLoadError(
                f"{as_path}: folder has no {OPEN_CLIP_CONFIG} — use a Hugging Face open_clip folder "
                f"(config + weights) or {flag}MODEL/{as_path}/<weights file>"
            )
        weights = _pick_weights(as_path)
        if weights is None:
            raise ModelLoadError(
                f"{as_path}: no weights file (*.safetensors, *.bin, *.pt, *.pth) next to {OPEN_CLIP_CONFIG}"
            )
        return ClipSpec("folder", None, None, folder=as_path, weights=weights)
    if as_path.is_file():
        if not (as_path.parent / OPEN_CLIP_CONFIG).is_file():
            raise ModelLoadError(
                f"{as_path}: no {OPEN_CLIP_CONFIG} next to this weights file — name the architecture "
                f"instead, e.g. {flag}ViT-B-16/{as_path}"
            )
        return ClipSpec("folder", None, None, folder=as_path.parent, weights=as_path)

    oc = _open_clip()
    model, sep, pretrained = spec.partition("/")
    models = oc.list_models()
    if model not in models:
        if spec.startswith((".", "/", "~")) or as_path.suffix in WEIGHT_SUFFIXES:
            raise no_such_clip_path(spec)
        hint = did_you_mean(model, models, n=3, cutoff=0.5)
        raise ModelLoadError(
            f"unknown open_clip model {model!r}{hint} and no such path; "
            f"see open_clip.list_models(), or pass a folder with {OPEN_CLIP_CONFIG}"
        )
    tags = oc.list_pretrained_tags_by_model(model)
    if not sep or not pretrained:
        raise ModelLoadError(
            f"{flag}{model} needs weights: {flag}{model}/TAG with TAG one of {', '.join(tags) or '(none)'}, "
            f"or {flag}{model}/path/to/weights.safetensors"
        )
    if pretrained in tags:
        return ClipSpec("tag", model, pretrained)
    weights = clip_path(pretrained)
    if weights.is_file():
        return ClipSpec("file", model, str(weights), weights=weights)
    if weights.is_dir():
        raise ModelLoadError(f"{weights}: is a folder — pass it as {flag}{weights} (with {OPEN_CLIP_CONFIG})")
    if Path(pretrained).suffix in WEIGHT_SUFFIXES or "/" in pretrained:
        raise ModelLoadError(f"{weights}: weights file not found — check the path")
    hint = did_you_mean(pretrained, tags, n=3, cutoff=0.5)
    raise ModelLoadError(
        f"{pretrained!r} is neither an open_clip tag of {model}{hint} nor a file; "
        f"tags: {', '.join(tags) or '(none)'}"
    )


# ---------------------------------------------------------------------------------------------------
# Weights: cache lookup and guarded download (tags), safe loading (files)
# ---------------------------------------------------------------------------------------------------


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _unreachable(host: str, timeout: float = NETWORK_TIMEOUT) -> str | None:
    """None if a TCP connection to ``host:443`` opens within ``timeout`` seconds, else the reason."""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return None
    except OSError as exc:
        return f"{host} unreachable ({exc.strerror or type(exc).__name__})"


def _hub_files(cfg: dict[str, Any]) -> tuple[str, list[str]] | None:
    """(repo_id, candidate filenames, safetensors first) of a tag's Hugging Face location."""
    hub = cfg.get("hf_hub", "")
    if not hub:
        return None
    from open_clip.pretrained import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    repo, filename = os.path.split(hub)
    filename = filename or HF_WEIGHTS_NAME
    names = [filename]
    if filename == HF_WEIGHTS_NAME:
        names.insert(0, HF_SAFE_WEIGHTS_NAME)
    elif filename.endswith((".bin", ".pth")):
        names.insert(0, filename[:-4] + ".safetensors")
    return repo, names


def _cached_tag_weights(cfg: dict[str, Any], cache_dir: str | None) -> str | None:
    """The weights of a tag if already downloaded (no network access)."""
    if cfg.get("file"):
        return str(cfg["file"])
    hub = _hub_files(cfg)
    if hub is not None:
        from huggingface_hub import hf_hub_download

        repo, names = hub
        for name in names:
            try:
                return hf_hub_download(repo, name, cache_dir=cache_dir, local_files_only=True)
            except Exception:  # noqa: BLE001 - any miss means "not cached"
                continue
    url = cfg.get("url", "")
    if url:
        target = Path(cache_dir or os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
        if target.is_file():
            return str(target)
    return None


def _local_copy_hint(model: str, cfg: dict[str, Any], flag: str = TEACHER_FLAG) -> str:
    oc = _open_clip()
    arch = model
    if cfg.get("quick_gelu") and not model.endswith("quickgelu") and f"{model}-quickgelu" in oc.list_models():
        arch = f"{model}-quickgelu"
    hub = _hub_files(cfg)
    layout = f" (the layout of the Hugging Face repo {hub[0]})" if hub else ""
    return (
        f"download them on a connected machine and pass a local path: "
        f"{flag}{arch}/path/to/open_clip_pytorch_model.bin, or {flag}path/to/folder "
        f"holding {OPEN_CLIP_CONFIG} + weights{layout}"
    )


def resolve_tag_weights(
    model: str, tag: str, cache_dir: str | Path | None = None, flag: str = TEACHER_FLAG
) -> str:
    """Local path of the weights of an open_clip tag: the cache, else a guarded download.

    ``flag`` is the command-line prefix the offline error suggests (``--model clipiqa:`` for a scorer).

    Raises :class:`ModelLoadError` at once when offline (``HF_HUB_OFFLINE``, or no TCP connection
    within :data:`NETWORK_TIMEOUT`), rather than entering huggingface_hub's retry loop.
    """
    oc = _open_clip()
    cache = None if cache_dir is None else str(cache_dir)
    cfg = oc.get_pretrained_cfg(model, tag)
    cached = _cached_tag_weights(cfg, cache)
    if cached:
        return cached
    hub = _hub_files(cfg)
    if hub is not None:
        host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    else:
        host = urlparse(cfg.get("url", "")).hostname or ""
    if _hub_offline():
        reason: str | None = "HF_HUB_OFFLINE is set"
    else:
        reason = _unreachable(host) if host else "no download source"
    if reason is None:
        try:
            path = oc.download_pretrained(cfg, cache_dir=cache)
        except Exception as exc:  # noqa: BLE001 - any download failure is a load failure
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        else:
            if path:
                return str(path)
            reason = "open_clip returned no file"
    raise ModelLoadError(
        f"CLIP weights {model}/{tag} could not be downloaded ({reason}); {_local_copy_hint(model, cfg, flag)}"
    )


def _check_weights_loadable(path: Path) -> None:
    """Fail early, with a clear message, if a weights file can't be read without unrestricted unpickling.

    open_clip reads safetensors with safetensors and other files with ``torch.load(weights_only=True)``;
    checking here (memory-mapped, cheap) means its legacy fallback to full unpickling is never reached.
    """
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                next(iter(f.keys()), None)
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(
                f"{path}: not a readable safetensors file ({exc}) — it is damaged, cut short (an "
                "interrupted download or copy?) or not safetensors: copy or download it again"
            ) from None
        return
    try:
        _load_plain(path)
    except Exception as exc:  # noqa: BLE001
        text = str(exc) or type(exc).__name__
        if isinstance(exc, EOFError) or "PytorchStreamReader failed" in text:
            raise ModelLoadError(
                f"{path}: damaged or cut short ({text.split('.')[0]}) — copy or download it again"
            ) from None
        raise ModelLoadError(
            f"{path}: cannot be read as plain tensors with weights_only=True ({_unpickler_reason(exc)}) — "
            "convert it to safetensors, or use an open_clip state-dict file (TorchScript .pt archives are "
            "not accepted)"
        ) from None


def _load_plain(path: Path) -> Any:
    """``torch.load(weights_only=True)``, memory-mapped where the format allows; torch's warning about a
    newer pickle protocol is dropped (the load either succeeds or raises)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            return torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):  # legacy (non-zip) torch files can't be memory-mapped
                raise
            return torch.load(str(path), map_location="cpu", weights_only=True)


def _unpickler_reason(exc: Exception) -> str:
    """What torch's weights-only unpickler refused, without its advice to retry with weights_only=False
    (which would run whatever code the file holds)."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        detail = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()
        first = detail[0].split(". ")[0].replace(" was not an allowed global by default", "").strip()
        return f"it holds Python objects, not only tensors: {first}" if first else "it holds Python objects"
    return text.splitlines()[0] if text else type(exc).__name__


_ARCH_FIX = (
    "name the architecture they were trained as (open_clip.list_models(); OpenAI weights: its -quickgelu "
    "name), or pass the Hugging Face open_clip folder they came in"
)
_FOLDER_FIX = (
    "put the open_clip_config.json these weights came with beside them (from the same Hugging Face repo)"
)


def _file_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape of a weights file as open_clip reads it (a ``state_dict`` entry unwrapped, a
    ``module.`` prefix dropped); empty when the file does not read as a plain mapping of tensors."""
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                names = f.keys()  # a safe_open handle is not iterable itself
                shapes = {k: tuple(f.get_slice(k).get_shape()) for k in names}
        else:
            obj = _load_plain(path)
            if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
                obj = obj["state_dict"]
            if not isinstance(obj, dict):
                return {}
            shapes = {str(k): tuple(v.shape) for k, v in obj.items() if isinstance(v, torch.Tensor)}
    except Exception:  # noqa: BLE001 - no details then: the caller falls back to open_clip's message
        return {}
    if shapes and next(iter(shapes)).startswith("module."):
        shapes = {k[len("module.") :]: v for k, v in shapes.items()}
    return shapes


def _misfit(model: torch.nn.Module, weights: Path) -> str | None:
    """How a weights file differs from a model's tensors (shapes, missing and extra names), or None."""
    found = _file_shapes(weights)
    if not found:
        return None
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    reshaped = [k for k in own if k in found and found[k] != own[k]]
    missing = [k for k in own if k not in found]
    extra = [k for k in found if k not in own]

    def size(shape: tuple[int, ...]) -> str:
        return "x".join(map(str, shape)) or "a scalar"

    parts = []
    if reshaped:
        k = reshaped[0]
        parts.append(
            f"{counted(len(reshaped), 'tensor')} of another shape, e.g. {k}: {size(found[k])} in the file, "
            f"{size(own[k])} in the model"
        )
    if missing:
        parts.append(f"{counted(len(missing), 'tensor')} of the model missing, e.g. {missing[0]}")
    if extra:
        parts.append(f"{counted(len(extra), 'tensor')} the model lacks, e.g. {extra[0]}")
    return "; ".join(parts) or None


def _load_weights(model: torch.nn.Module, weights: Path, what: str, fix: str) -> None:
    """open_clip's strict load; weights of another architecture are said as which tensors differ."""
    try:
        _open_clip().load_checkpoint(model, str(weights), strict=True, weights_only=True)
    except Exception:
        misfit = _misfit(model, weights)
        if misfit is None:
            raise  # the caller's generic "cannot build" line, with open_clip's reason
        raise ModelLoadError(f"{weights}: these weights do not fit {what} ({misfit}) — {fix}") from None


class _DropOpenClipNoise(logging.Filter):
    """open_clip logs "initialised randomly" before we load the weights ourselves; hide that line."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not ("initialized randomly" in msg or "no CLIP weights found" in msg)


@contextlib.contextmanager
def _quiet_open_clip() -> Iterator[None]:
    root = logging.getLogger()
    filt = _DropOpenClipNoise()
    root.addFilter(filt)
    try:
        yield
    finally:
        root.removeFilter(filt)


def load_open_clip(
    spec: ClipSpec,
    device: str | torch.device = "cpu",
    cache_dir: str | Path | None = None,
    flag: str = TEACHER_FLAG,
) -> tuple[torch.nn.Module, Callable[[Image.Image], torch.Tensor], Callable[[list[str]], torch.Tensor], str]:
    """Build (model, eval preprocess, tokenizer, weights path) for a parsed spec, weights loaded."""
    oc = _open_clip()
    from open_clip.transform import PreprocessCfg, image_transform_v2

    common = {"device": device, "pretrained_image": False, "pretrained_text": False, "weights_only": True}
    try:
        if spec.kind == "folder":
            assert spec.folder is not None and spec.weights is not None
            cfg_path = spec.folder / OPEN_CLIP_CONFIG
            try:
                doc = json.loads(cfg_path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise ModelLoadError(f"{cfg_path}: unreadable ({exc})") from None
            if not isinstance(doc, dict) or "model_cfg" not in doc:
                raise ModelLoadError(
                    f"{cfg_path}: missing 'model_cfg' (expected the Hugging Face open_clip layout)"
                )
            weights = spec.weights
            _check_weights_loadable(weights)
            name = f"local-dir:{spec.folder}"
            with _quiet_open_clip():
                model = oc.create_model(name, load_weights=False, **common)
            _load_weights(model, weights, f"the model of {cfg_path.name} beside it", _FOLDER_FIX)
            tokenizer = oc.get_tokenizer(name)
        else:
            assert spec.model is not None and spec.pretrained is not None
            force_quick_gelu, force_pp = False, None
            if spec.kind == "tag":
                tag_cfg = oc.get_pretrained_cfg(spec.model, spec.pretrained)
                weights = Path(resolve_tag_weights(spec.model, spec.pretrained, cache_dir, flag))
                # What open_clip itself takes from a tag's config when it downloads by tag.
                force_quick_gelu = bool(tag_cfg.get("quick_gelu", False))
                force_pp = {k: tag_cfg[k] for k in _PREPROCESS_KEYS if k in tag_cfg} or None
            else:
                weights = Path(spec.pretrained)
            _check_weights_loadable(weights)
            with _quiet_open_clip():
                model = oc.create_model(
                    spec.model, force_quick_gelu=force_quick_gelu, force_preprocess_cfg=force_pp, **common
                )
            _load_weights(model, weights, f"the architecture {spec.model}", _ARCH_FIX)
            tokenizer = oc.get_tokenizer(spec.model)
    except ModelLoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - state-dict mismatch, bad config, ...
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelLoadError(f"cannot build CLIP model from {spec.describe()}: {first[:300]}") from None
    preprocess = image_transform_v2(PreprocessCfg(**model.visual.preprocess_cfg), is_train=False)
    return model, preprocess, tokenizer, str(weights)


# ---------------------------------------------------------------------------------------------------
# The teacher
# ---------------------------------------------------------------------------------------------------


class ClipTeacher(Teacher):
    """CLIP zero-shot attribute scores, paper §3.2 eq. (1)-(2), any open_clip model.

    Text embeddings of the ten prompts are computed once at construction (normalised) and reused for
    every batch. Pickling keeps only what :meth:`transform` needs (the open_clip preprocess, a
    torchvision ``Compose``), so DataLoader workers don't receive a copy of the model; an unpickled
    copy can transform but not score.
    """

    name = "clip"
    columns = ATTRIBUTES

    def __init__(
        self,
        spec: str = DEFAULT_CLIP_SPEC,
        device: str | torch.device = "cpu",
        prompts: str | Path | PromptSet | None = None,
        scale: float = 1.0,
        cache_dir: str | Path | None = None,
        hint_flag: str = TEACHER_FLAG,
    ) -> None:
        super().__init__(device)
        read = prompt_set(prompts)  # a bad prompts file fails before a slow model load
        parsed = parse_clip_spec(spec, hint_flag.split()[-1])
        model, preprocess, tokenizer, weights = load_open_clip(parsed, self.device, cache_dir, hint_flag)
        info = {"spec": spec, "weights": weights, **_spec_info(parsed)}
        info.update(clip_identity(parsed, model, weights))
        self._setup(model, preprocess, tokenizer, read, scale, info)

    @classmethod
    def from_model(
        cls,
        model: torch.nn.Module,
        preprocess: Callable[[Image.Image], torch.Tensor],
        tokenizer: Callable[[list[str]], torch.Tensor],
        device: str | torch.device = "cpu",
        prompts: str | Path | PromptSet | None = None,
        scale: float = 1.0,
        description: str = "custom",
    ) -> ClipTeacher:
        """Wrap an already built open_clip-like model (encode_image / encode_text), e.g. to try many
        prompt sets with one model."""
        self = cls.__new__(cls)
        Teacher.__init__(self, device)
        self._setup(model, preprocess, tokenizer, prompt_set(prompts), scale, {"spec": description})
        return self

    def _setup(
        self,
        model: torch.nn.Module,
        preprocess: Callable[[Image.Image], torch.Tensor],
        tokenizer: Callable[[list[str]], torch.Tensor],
        prompts: PromptSet,
        scale: float,
        info: dict[str, Any],
    ) -> None:
        scale = float(scale)
        if not scale > 0 or scale == float("inf"):
            raise ValueError(f"clip scale must be a finite number > 0, got {scale}")
        self.scale = scale
        self.prompts = prompts
        self.preprocess = preprocess
        size = getattr(getattr(model, "visual", None), "image_size", None)
        # shorter edge the preprocess resizes to: big JPEGs may decode at a reduced scale (load_image)
        self.min_shorter = int(min(size) if isinstance(size, (tuple, list)) else size) if size else None
        self.tokenizer = tokenizer
        self.model: torch.nn.Module | None = model.to(self.device).eval()
        self._info = info
        feats = self.encode_texts(self.prompts.texts())  # (10, D)
        self.text_features: torch.Tensor | None = feats.view(len(ATTRIBUTES), 2, -1)  # [attr, pos/neg, D]

    # -- Teacher API ------------------------------------------------------------------------------

    def transform(self, img: Image.Image) -> torch.Tensor:
        """open_clip's eval preprocessing of this model (resize, centre crop, CLIP normalisation)."""
        if img.mode != "RGB":
            img = img.convert("RGB")
        return self.preprocess(img)

    def _require_model(self) -> Any:
        if self.model is None:
            raise RuntimeError("transform-only ClipTeacher (an unpickled copy); score with the original")
        return self.model

    @torch.no_grad()
    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """L2-normalised text embeddings (T, D) — E_T(t)/||E_T(t)|| of eq. (1)."""
        model = self._require_model()
        tokens = self.tokenizer(texts).to(self.device)
        return F.normalize(model.encode_text(tokens).float(), dim=-1)

    @torch.no_grad()
    def encode_images(self, batch: torch.Tensor) -> torch.Tensor:
        """L2-normalised image embeddings (N, D) — E_I(x)/||E_I(x)|| of eq. (1); ``batch`` from
        :meth:`transform`."""
        model = self._require_model()
        return F.normalize(model.encode_image(batch.to(self.device)).float(), dim=-1)

    @torch.no_grad()
    def similarities(self, batch: torch.Tensor) -> torch.Tensor:
        """Eq. (1) cosine similarities, shape (N, 5, 2): [image, attribute, (positive, negative)]."""
        self._require_model()
        if self.text_features is None:
            raise RuntimeError("text embeddings missing: construct ClipTeacher normally")
        return torch.einsum("nd,akd->nak", self.encode_images(batch), self.text_features)

    @torch.no_grad()
    def score_tensors(self, batch: torch.Tensor) -> torch.Tensor:
        """Eq. (2): softmax over (positive, negative) of ``scale * cos``; the positive's share, (N, 5)."""
        return torch.softmax(self.scale * self.similarities(batch), dim=-1)[..., 0]

    def metadata(self) -> dict[str, Any]:
        return {
            "teacher": self.name,
            **self._info,
            "scale": self.scale,
            "formula": "softmax_{pos,neg}(scale * cos(E_I(x), E_T(t))) — paper eq. (1)-(2)",
            "prompts": self.prompts.to_dict(),
            "prompts_file": self.prompts.path,
            "prompts_sha256": self.prompts.fingerprint(),
        }

    # -- pickling: transform-only copies for DataLoader workers --------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["model"] = None
        state["tokenizer"] = None
        state["text_features"] = None
        return state


def clip_identity(spec: ClipSpec, model: torch.nn.Module, weights: str) -> dict[str, Any]:
    """What the labels depend on, whatever path or spelling named it: the weights' SHA-256, the
    architecture (open_clip's model config, QuickGELU as the tag forces it) and the preprocessing. A label
    table compares these, not the spec, so ``clip:./m`` and ``clip:/abs/m`` are one teacher and weights
    replaced in place are another (:func:`attiqa.labeling.check_same_teacher`; the CLIP scorers' metadata,
    hence `attiqa eval`'s score cache and `attiqa score`'s resume record)."""
    from attiqa.io.hashes import sha256_of

    oc = _open_clip()
    if spec.kind == "folder":
        assert spec.folder is not None
        cfg = dict(json.loads((spec.folder / OPEN_CLIP_CONFIG).read_text(encoding="utf-8"))["model_cfg"])
    else:
        cfg = dict(oc.get_model_config(spec.model) or {"name": spec.model})
        if spec.kind == "tag" and oc.get_pretrained_cfg(spec.model, spec.pretrained).get("quick_gelu"):
            cfg["quick_gelu"] = True
    cfg["quick_gelu"] = bool(cfg.get("quick_gelu", False))
    arch = json.dumps(cfg, sort_keys=True).encode("utf-8")
    preprocess = getattr(getattr(model, "visual", None), "preprocess_cfg", None)
    return {
        "weights_sha256": sha256_of(weights),  # streamed: open_clip's .bin / .pt too, no checkpoint reading
        "architecture_sha256": hashlib.sha256(arch).hexdigest(),
        "preprocess": json.loads(json.dumps(preprocess, sort_keys=True, default=str)),
    }


# what names a CLIP model rather than being it: the spec as typed, the weights' path, open_clip's name and
# tag (the architecture is in architecture_sha256), an ExIQA run's CLIP spec
CLIP_SPELLINGS = ("spec", "weights", "model", "pretrained", "clip")
# what :func:`clip_identity` adds; a record of an earlier version has none of it
CLIP_HASHED = ("weights_sha256", "architecture_sha256", "preprocess")


def without_spellings(meta: Mapping[str, Any]) -> dict[str, Any]:
    """A scorer's metadata as what it is, not how it was named: with the weights' hash in it
    (:func:`clip_identity`) the spec and paths that named them go (``clipiqa:./m`` and ``clipiqa:/abs/m``,
    the folder or the file in it, are one scorer), and where the prompt texts are hashed the prompts file and
    its document go (its name, notes, the file it came from change no score). The one rule for `attiqa
    eval`'s score cache, `attiqa score -o`'s resume record (:func:`attiqa.evaluation.cache.score_cache_key`)
    and a label table's teacher (:func:`same_clip`). Without a hash it is returned as it is."""
    drop: tuple[str, ...] = CLIP_SPELLINGS if "weights_sha256" in meta else ()
    drop += ("prompts_file", "prompts") if "prompts_sha256" in meta else ()
    return {k: v for k, v in meta.items() if k not in drop}


def same_clip(before: Mapping[str, Any], now: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two records of a CLIP model as :func:`without_spellings` compares them; one of an earlier version
    without the weights' hash on either side is compared by its spec and paths, as it was then (the
    hashes dropped from both)."""
    hashed = "weights_sha256" in before and "weights_sha256" in now
    a, b = ({k: v for k, v in m.items() if hashed or k not in CLIP_HASHED} for m in (before, now))
    return without_spellings(a), without_spellings(b)


def _spec_info(spec: ClipSpec) -> dict[str, Any]:
    if spec.kind == "folder":
        return {"model": f"local-dir:{spec.folder}", "pretrained": None}
    return {"model": spec.model, "pretrained": spec.pretrained}
