"""Test helpers for genbench: a tiny random-weight Stable Diffusion built from configs (no download), a run
folder of real photos, and the real ``genbench vote`` server in a subprocess.

Real diffusers/transformers classes (UNet2DConditionModel, AutoencoderKL, CLIPTextModel, CLIPTokenizer,
DDIMScheduler) at toy sizes, saved with ``save_pretrained`` so genbench loads it like a local SD copy.
The tokenizer is a byte-level CLIP BPE with the 512 byte symbols and a few word merges, written here.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest


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


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


CHROMEDRIVER = shutil.which("chromedriver")


CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,900",
)


@contextlib.contextmanager
def chromium():
    """A headless Chromium of its own profile (its own localStorage: another browser) under selenium."""
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip(
            "chromium and chromium-driver are not installed (apt-get install -y chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="genbench-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, read by a test
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def as_started(driver) -> None:
    """``driver`` as :func:`chromium` starts one: one blank tab at CHROMIUM_FLAGS' window size, no console
    lines left to read, and nothing stored by the pages it showed (each test's server is another origin, but a
    port may come round again) — so one browser serves a module's tests as a fresh one each."""
    from selenium.common.exceptions import NoAlertPresentException

    origins = set()
    for handle in driver.window_handles:
        driver.switch_to.window(handle)
        with contextlib.suppress(NoAlertPresentException):
            driver.switch_to.alert.dismiss()
        history = driver.execute_cdp_cmd("Page.getNavigationHistory", {})["entries"]
        origins |= {m[0] for e in history if (m := re.match(r"https?://[^/]+", e["url"]))}
    for origin in origins:
        driver.execute_cdp_cmd("Storage.clearDataForOrigin", {"origin": origin, "storageTypes": "all"})
    for handle in driver.window_handles[1:]:
        driver.switch_to.window(handle)
        driver.close()
    driver.switch_to.window(driver.window_handles[0])
    driver.get("about:blank")
    driver.execute_cdp_cmd("Page.resetNavigationHistory", {})
    driver.set_window_size(1200, 900)
    driver.get_log("browser")


def log_in(browser, server, rater: str, answer: str | None = None):
    """Open the study, enter ``rater``; returns once the first pair is on screen. The page's question about
    who is rating, if it asks one, is answered by pressing the button labelled ``answer`` ("ENTER": the
    key, on the button the page focused)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(server.url + "/")
    until(browser, lambda d: d.find_element(By.ID, "instructions").text)
    if state(browser) != "login":  # the tab had logged in: it goes on as that rater (session 54)
        if rater_of(browser) == rater:
            assert answer is None, "the page asked nothing"
            until(browser, lambda d: state(d) in ("voting", "finished"))
            return
        browser.find_element(By.ID, "switch").click()  # another rater at this tab
        until(browser, lambda d: state(d) == "login")
    field = browser.find_element(By.ID, "rater")
    field.clear()
    field.send_keys(rater, Keys.ENTER)
    until(browser, lambda d: state(d) in ("voting", "finished", "confirm"))
    if state(browser) == "confirm":
        asked = browser.find_element(By.ID, "confirm-text").text
        assert answer is not None, f"unexpected question: {asked}"
        if answer == "ENTER":  # the focused answer
            browser.switch_to.active_element.send_keys(Keys.ENTER)
        else:
            press_answer(browser, answer)
        until(browser, lambda d: state(d) in ("voting", "finished"))
    else:
        assert answer is None, "the page asked nothing"


def press_answer(browser, label: str) -> None:
    """Click the question's button labelled ``label``."""
    from selenium.webdriver.common.by import By

    buttons = browser.find_elements(By.CSS_SELECTOR, "#confirm-choices button")
    (button,) = [b for b in buttons if b.text == label] or [None]
    assert button is not None, [b.text for b in buttons]
    button.click()


def until(browser, cond, timeout: float = 30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(cond)


def rater_of(browser) -> str | None:
    """The rater the page says it is rating as (None before a login)."""
    return browser.execute_script(
        "const w = document.getElementById('who'); return w.hidden ? null : "
        "document.getElementById('who-id').textContent"
    )


def state(browser) -> str | None:
    return browser.execute_script("return document.body.dataset.state")


def showing(browser) -> dict:
    return browser.execute_script(
        "const $ = (id) => document.getElementById(id); return {pair: $('pair').dataset.pairId, "
        "progress: $('progress').textContent, status: $('status').textContent, "
        "widths: ['left', 'right'].map((id) => $(id).naturalWidth)}"
    )


def wait_for_pair(browser, progress: str) -> None:
    """Wait until the page shows a pair with both images loaded and its progress line starting with
    ``progress``: the line may be written before the images finish loading (a race CI met), and a 404 or an
    image that cannot load leaves its width 0, so the wait fails."""
    until(browser, lambda d: showing(d)["progress"].startswith(progress) and min(showing(d)["widths"]))


def press_left(browser, times: int, done: int = 0) -> None:
    """Vote ← ``times`` times from ``done`` votes, each time until the next pair is on screen."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    for k in range(done, done + times):
        browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_LEFT)
        wait_for_pair(browser, f"{k + 1} / 5")


def votes_of(run, rater: str) -> list[str]:
    with sqlite3.connect(run / "votes.sqlite") as con:
        return [r[0] for r in con.execute("SELECT pair_id FROM votes WHERE rater=? ORDER BY id", (rater,))]
