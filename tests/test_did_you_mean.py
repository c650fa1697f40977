"""One wording for a misspelt name, whichever command is asked: the scorer registry said
``did you mean classical?``, the teacher ``did you mean 'classical'?``, backbones ``Did you mean: x?`` —
every suggestion now comes from :func:`attiqa.errors.did_you_mean`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from attiqa.errors import AttiqaError, did_you_mean
from attiqa.models.backbones import create_backbone
from attiqa.protocols import run_protocol
from attiqa.scorers import create_scorer
from attiqa.teachers import create_teacher


def test_every_registry_words_the_suggestion_the_same(tmp_path: Path) -> None:
    said = []
    for call in (
        lambda: create_scorer("clasical"),
        lambda: create_teacher("clasical"),
        lambda: create_backbone("resnet-50"),
        lambda: run_protocol("crosss", [], None, tmp_path),
    ):
        with pytest.raises(AttiqaError) as exc:
            call()
        said.append(str(exc.value))
    for msg in said:
        assert re.search(r" \(did you mean '[^']+'(?:, '[^']+')*(?: or '[^']+')?\?\)", msg), msg


def test_several_close_names_read_as_a_list_ending_in_or() -> None:
    assert did_you_mean("clasical", ["classical", "clip"]) == " (did you mean 'classical'?)"
    assert did_you_mean("abcd", ["ab", "abc", "abcd1"], n=3) == " (did you mean 'abcd1', 'abc' or 'ab'?)"
    assert (
        did_you_mean("koniq", ["koniq10k"], aliases={"koniq": "koniq10k"}, n=3)
        == " (did you mean 'koniq10k'?)"
    )
    assert did_you_mean("zzz", ["classical"]) == ""


def test_no_module_keeps_its_own_difflib_helper() -> None:
    root = Path(__file__).resolve().parents[1]
    users = [
        p.relative_to(root).as_posix()
        for pkg in ("attiqa", "genbench", "isp_env")
        for p in (root / pkg).rglob("*.py")
        if "difflib" in p.read_text(encoding="utf-8")
    ]
    assert users == ["attiqa/errors.py"], users
