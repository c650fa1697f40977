"""A checkpoint from elsewhere (session 54): the file hash of a named model through the checkpoint's one
reading, and the checkpoint path of a user whose file was not written here."""

from __future__ import annotations

from pathlib import Path

import pytest

from attiqa.errors import ModelLoadError
from attiqa.scorers.zoo import named_models, resolve_weights

DEFAULT = Path(__file__).resolve().parents[1] / "attiqa" / "data" / "models" / "attiqa-default.safetensors"


def test_a_named_models_download_cut_short_says_fetch_it_again(tmp_path, monkeypatch):
    """A downloaded named model cut short (a download stopped, a full disk) keeps the mismatch's fix, "delete
    the file and fetch it again": the file hash now comes from the checkpoint's one reading
    (``weights_sha256`` = ``checkpoint_hashes(path).sha256``), where a file safetensors cannot read is
    "not a readable safetensors checkpoint", a fix about the user's own file."""
    rows = {k: dict(v) for k, v in named_models().items()}
    row = rows["attiqa-default"]
    del row["file"]
    row["url"] = "https://example.invalid/attiqa-default.safetensors"  # never fetched: the file is there
    monkeypatch.setattr("attiqa.scorers.zoo.named_models", lambda: rows)
    monkeypatch.setenv("ATTIQA_CACHE", str(tmp_path))
    data = DEFAULT.read_bytes()
    (tmp_path / "attiqa-default.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="SHA-256 mismatch for model 'attiqa-default' — delete the file"):
        resolve_weights("attiqa-default")
    (tmp_path / "attiqa-default.safetensors").write_bytes(data)
    assert resolve_weights("attiqa-default") == tmp_path / "attiqa-default.safetensors"
