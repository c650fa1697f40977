"""What a checkpoint's model card may hold — one definition for the card check
(:func:`attiqa.models.attiqa_model.validate_model_card`, before anything is allocated: a card is data from a
file) and the training config (:mod:`attiqa.config`: a run outside them would write a model no command
loads); and the largest seed a config or a command's --seed takes."""

MIN_SIDE = 32  # smallest test/pretrain resize or crop
MAX_SIDE = 4096  # largest test/pretrain resize or crop (the paper's: 340 / 320)
MAX_HIDDEN = 16384  # widest head / MLP (the shipped models: 128 and 512)
SEED_MAX = 2**32 - 1  # largest seed (numpy's legacy seeding, and the RL agents' through it, takes no more)
MAX_EPOCHS = 100_000
"""Most epochs a training stage takes (the paper's: 100, §4.2 and supplement B): a run planned past it does
not finish (a one-second epoch is 28 hours), and its step count sizes the learning-rate schedule."""
MAX_BATCH = 16_384
"""Largest batch a stage takes (the paper's: 256 pretraining, 16 fine-tuning): a batch's views are decoded and
held at once, 16,384 crops of 320 px ~20 GB as float32 — beyond any GPU's memory, so a typo, not a plan."""
MAX_PROMPTS = 1024
"""Most visual prompt tokens `attiqa train exiqa` takes (paper 004 Table II: 15 to 100; VPT searched up to
200). A training step keeps every layer's attention, heads x (image tokens + prompts)^2 values a photo: at
1024 prompts on ViT-B-16 (12 layers of 12 heads, 197 tokens) 12 x 12 x 1221^2 x 4 bytes, ~0.9 GB a photo;
the prompts are checked before they size anything (CLIP, the prompt tensor, a batch)."""


def crop_misfit(resize: int | None, crop: int | None, resize_key: str, crop_key: str) -> str:
    """Why a ``crop`` is refused for a shorter edge resized to ``resize`` ("" when it fits or either is
    unset), the fix in terms of the two settings' names. The views do not pad: ``ensure_min_size``
    (:mod:`attiqa.models.transforms`) blows the resized image up to the crop, so every image would be shrunk
    and blown up again. The one rule for run configs (:mod:`attiqa.config`) and model cards
    (``validate_model_card``); here, torch-free, so a run config is checked before torch loads."""
    if resize is None or crop is None or crop <= resize:
        return ""
    return (
        f"{crop} is larger than {resize_key} {resize} (every image would be shrunk to {resize} px and blown "
        f"up again) — set {resize_key} >= {crop_key}"
    )
