"""genbench prompts: the supplement's template and Table 13 candidates, seeded distinct draws, user files."""

from __future__ import annotations

import json

import pytest

from attiqa.errors import ConfigError
from genbench.prompts import all_prompts, draw_prompts, load_prompt_spec, template_slots


def test_default_spec_is_the_papers_table_13():
    spec = load_prompt_spec()
    head = "masterpiece, best quality, photorealistic photography, crystal clear, 8K UHD"
    assert spec.template == f"{head}, {{action}} {{object}} {{place}}"
    assert list(spec.candidates) == ["action", "object", "place"]
    assert [len(v) for v in spec.candidates.values()] == [9, 5, 6]
    assert spec.candidates["object"] == ["a dog", "a cat", "a clothed man", "a dressed woman", "a bear"]
    assert spec.n_combinations == 270
    texts = [p.text for p in all_prompts(spec)]
    assert len(set(texts)) == 270
    bear = "masterpiece, best quality, photorealistic photography, crystal clear, 8K UHD, sleeping a bear in"
    assert f"{bear} the desert" in texts


def test_draw_is_distinct_seeded_and_prefix_stable():
    spec = load_prompt_spec()
    a = draw_prompts(spec, 200, seed=0)
    assert len({p.text for p in a}) == 200
    assert [p.text for p in draw_prompts(spec, 200, seed=0)] == [p.text for p in a]
    assert [p.text for p in draw_prompts(spec, 50, seed=0)] == [p.text for p in a[:50]]
    assert [p.text for p in draw_prompts(spec, 200, seed=1)] != [p.text for p in a]
    p = a[0]
    assert p.text.endswith(f"{p.slots['action']} {p.slots['object']} {p.slots['place']}")


def test_too_many_pairs_is_a_clear_error():
    with pytest.raises(ConfigError, match="270"):
        draw_prompts(load_prompt_spec(), 271)


def test_user_template_and_candidates(tmp_path):
    t = tmp_path / "t.txt"
    t.write_text("a photo of {animal} at {time}\n")
    c = tmp_path / "c.json"
    cands = {"animal": ["a fox", "an owl"], "time": ["dawn", "noon", "night"], "unused": ["x"]}
    c.write_text(json.dumps(cands))
    spec = load_prompt_spec(t, c)
    assert template_slots(spec.template) == ["animal", "time"]
    prompts = draw_prompts(spec, 6, seed=3)
    assert sorted(p.text for p in prompts) == sorted(
        f"a photo of {a} at {b}" for a in ("a fox", "an owl") for b in ("dawn", "noon", "night")
    )


@pytest.mark.parametrize(
    "content, message",
    [
        ({"animal": ["a fox"]}, "no candidates for template slot"),
        ({"animal": [], "time": ["x"]}, "non-empty list"),
        ({"animal": ["a", "a"], "time": ["x"]}, "twice"),
    ],
)
def test_bad_candidate_files(tmp_path, content, message):
    t = tmp_path / "t.txt"
    t.write_text("{animal} {time}")
    c = tmp_path / "c.json"
    c.write_text(json.dumps(content))
    with pytest.raises(ConfigError, match=message):
        load_prompt_spec(t, c)
    c.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_prompt_spec(t, c)


@pytest.mark.parametrize(
    "text, message",
    [
        (b"a {animal", "not a template (expected '}' before end of string)"),
        (b"a } {animal}", "not a template (Single '}' encountered"),
        (b"a {0} {animal}", "template slot {0} is not a plain name"),
        (b"\xff\xfe a {animal}", "the template is not UTF-8 text"),
    ],
)
def test_bad_template_files_are_one_line_naming_the_file(tmp_path, text, message):
    """**Was** (session 34): an unmatched brace ended `genbench run --template` in a ValueError traceback,
    a non-UTF-8 file in a UnicodeDecodeError; a positional slot's error did not name the file."""
    t = tmp_path / "t.txt"
    t.write_bytes(text)
    c = tmp_path / "c.json"
    c.write_text(json.dumps({"animal": ["a fox"]}))
    with pytest.raises(ConfigError) as err:
        load_prompt_spec(t, c)
    assert str(err.value).startswith(f"{t}: ") and message in str(err.value), err.value
    t.write_bytes(b"\xef\xbb\xbfa {animal}\n")  # a byte-order mark is not part of the template
    assert load_prompt_spec(t, c).template == "a {animal}"
