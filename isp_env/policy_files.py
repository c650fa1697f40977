"""Which file a policy argument (``--policy``, ``--init-policy``) names, torch-free: ``isp-tune`` says a
missing one before torch loads; :mod:`isp_env.policy_io` reads what it names."""

from __future__ import annotations

from pathlib import Path

from attiqa.errors import ModelLoadError, did_you_mean

DEFAULT_POLICY = Path(__file__).parent / "data" / "policy-default.safetensors"


def resolve_policy(spec: str | Path) -> Path:
    """``default`` -> the policy shipped with the package (docs/isp.md has its card); a run folder -> its
    policy.safetensors; else a path."""
    if str(spec) == "default":
        if not DEFAULT_POLICY.exists():
            raise ModelLoadError(
                "no default ISP policy is bundled with this install — pass --policy PATH to "
                "a policy.safetensors written by `isp-tune`"
            )
        return DEFAULT_POLICY
    path = Path(spec)
    if path.is_dir():  # a run folder: its policy
        if not (path / "policy.safetensors").is_file():
            raise ModelLoadError(
                f"{path}: a folder without policy.safetensors — pass an isp-tune run folder or its "
                "RUN/policy.safetensors"
            )
        return path / "policy.safetensors"
    card_of = path.with_suffix(".safetensors")
    if path.suffix.lower() == ".json" and path.is_file():  # RUN/policy.json: the card beside the policy
        fix = f"pass the policy itself, {card_of}" if card_of.is_file() else "pass a policy.safetensors"
        raise ModelLoadError(f"{path}: a JSON file, not a policy — {fix} (a parameter file goes to --params)")
    if not path.is_file():
        if hint := did_you_mean(str(spec), ["default"]):  # `--policy defualt`
            raise ModelLoadError(
                f"{path}: no such policy file{hint} — `default` is the policy shipped with the package"
            )
        raise ModelLoadError(
            f"{path}: no such policy file — pass a policy.safetensors written by `isp-tune` "
            "(RUN/policy.safetensors), or `default` for the policy shipped with the package"
        )
    return path
