"""Test helpers for genbench: a tiny random-weight Stable Diffusion built from configs (no download), a run
folder of real photos, and the real ``genbench vote`` server in a subprocess.

Real diffusers/transformers classes (UNet2DConditionModel, AutoencoderKL, CLIPTextModel, CLIPTokenizer,
DDIMScheduler) at toy sizes, saved with ``save_pretrained`` so genbench loads it like a local SD copy.
The tokenizer is a byte-level CLIP BPE with the 512 byte symbols and a few word merges, written here.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    keep += list(range(ord("®"), ord("ÿ") + 1))
    chars = keep[:]
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(keep, (chr(c) for c in chars), strict=True))


WORDS = ["masterpiece", "best", "quality", "photorealistic", "photography", "crystal", "clear", "uhd"]
WORDS += ["a", "dog", "cat", "in", "the"]


def write_tokenizer(folder: Path, words: list[str] = WORDS) -> int:
    """vocab.json + merges.txt + tokenizer_config.json of a small CLIP BPE; returns the vocab size.

    The vocabulary is the 512 byte symbols (with and without the end-of-word mark) plus one merge chain
    per word in ``words`` (``m a`` -> ``ma``, ``ma s`` -> ``mas``, ...), so those words are one token.
    """
    folder.mkdir(parents=True, exist_ok=True)
    symbols = list(_bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols]
    merges: list[str] = []
    for word in words:
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        left = pieces[0]
        for right in pieces[1:]:
            merged = left + right
            if merged not in vocab:
                merges.append(f"{left} {right}")
                vocab.append(merged)
            left = merged
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 77}), encoding="utf-8")
    return len(vocab)


def build_tiny_sd(out: Path) -> Path:
    """Save a random-weight SD pipeline (latents 4ch, VAE factor 2, 32-dim text encoder) to ``out``."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vocab_size = write_tokenizer(out.parent / "tiny_tokenizer")
    tokenizer = CLIPTokenizer.from_pretrained(str(out.parent / "tiny_tokenizer"))
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=4,
        attention_head_dim=4,
    )
    vae = AutoencoderKL(
        block_out_channels=[8, 16],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        latent_channels=4,
        norm_num_groups=4,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=vocab_size,
            bos_token_id=vocab_size - 2,
            eos_token_id=vocab_size - 1,
            pad_token_id=vocab_size - 1,
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=77,
            projection_dim=32,
        )
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        unet=unet,
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(str(out))
    return out


def make_photo_run(run: Path, photos: dict) -> Path:
    """A run folder of real photos: each pair is a photo and a blurred copy, in alternating order."""
    from PIL import Image, ImageFilter

    from genbench.manifest import write_manifest

    (run / "images").mkdir(parents=True)
    records = []
    for i, (name, img) in enumerate(photos.items()):
        small = img.resize((img.width // 4, img.height // 4), Image.BICUBIC)
        blurred = small.filter(ImageFilter.GaussianBlur(3))
        first, second = (small, blurred) if i % 2 == 0 else (blurred, small)
        first.save(run / "images" / f"{name}_a.png")
        second.save(run / "images" / f"{name}_b.png")
        rec = {"pair_id": name, "image_a": f"images/{name}_a.png", "image_b": f"images/{name}_b.png"}
        records.append({**rec, "sharp": "a" if i % 2 == 0 else "b"})
    write_manifest(run, records)
    return run


def copied_run(run: Path, dest: Path) -> Path:
    """``run`` copied to ``dest``: a test's own copy of a run made once for its module (a run's manifest
    names its images relative to it, or where an import read them)."""
    return Path(shutil.copytree(run, dest))


class VoteServer:
    """``genbench vote RUN --port PORT`` in a subprocess (0: any free port); its log (and the chosen port)
    goes to a file."""

    def __init__(self, run: Path, log: Path, port: int = 0) -> None:
        import subprocess
        import time

        from helpers import attiqa_env, genbench_cmd

        self.log = log
        self._fh = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            genbench_cmd("vote", run, "--port", port),
            env=attiqa_env(),
            stdout=self._fh,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            found = re.search(r"http://127\.0\.0\.1:(\d+)/", log.read_text())
            if found:
                self.port = int(found.group(1))
                self.url = f"http://127.0.0.1:{self.port}"
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"genbench vote did not start: {log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except Exception:
                self.proc.kill()
        self._fh.close()
