"""A run config's ``label.prompts`` that is missing or not a prompts file: the line names the key."""

from __future__ import annotations

import pytest
from helpers import one_line_error, tiny_train_config


@pytest.mark.parametrize(
    ("content", "said"),
    [(None, "label.prompts: {p} not found"), ("{", "label.prompts: {p}: not valid JSON")],
    ids=["missing", "not-json"],
)
def test_a_bad_prompts_file_is_told_with_its_key(cli, tmp_path, content, said):
    """**Was**: "error: nope.json: prompts file not found — check the path" (and "bad.json: not valid
    JSON …"): no word of which setting named the file. Now the line starts with ``label.prompts``; the
    missing file is told when the config is read, before any run folder."""
    cfg = tiny_train_config(tmp_path)
    prompts = tmp_path / "prompts.json"
    if content is not None:
        prompts.write_text(content)
    images = tmp_path / "set" / "images"
    cfg.write_text(
        cfg.read_text()
        + f"label: {{images: [{images}], teacher: 'clip:ViT-B-32/openai', prompts: {prompts}}}\n"
        + "pretrain: {epochs: 1, batch_size: 4, resize_shorter: 40, crop_size: 32, num_workers: 0, "
        + "device: cpu}\n"
    )
    line = one_line_error(cli("train", "-c", cfg))
    assert said.format(p=prompts) in line, line
    assert not (tmp_path / "run").exists()
