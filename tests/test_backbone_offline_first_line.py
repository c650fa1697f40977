"""A torchvision-weights backbone (ResNet-50) offline: the first line a user sees is ours."""

from __future__ import annotations

from helpers import tiny_train_config


def test_resnet50_offline_run_says_our_line_first(cli, tmp_path, monkeypatch):
    """**Was**: `attiqa train` of a ResNet-50 run offline printed torch's 'Downloading:
    "https://download.pytorch.org/models/resnet50-….pth" to …' before "error: resnet50: cannot download
    ImageNet weights …" — read as a download under way. Now our one line alone. Offline for sure: no cached
    weights (TORCH_HOME) and every HTTPS request sent to a closed local port."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for var in ("https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    cfg = tiny_train_config(tmp_path)
    res = cli(
        "train", "-c", cfg, "--set", "model.backbone=resnet50", "--set", "model.pretrained_backbone=true"
    )
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2, res.stderr
    assert lines and lines[0].startswith("error: resnet50: cannot download ImageNet weights"), res.stderr
    assert "Downloading" not in res.stdout + res.stderr
