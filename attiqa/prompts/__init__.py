"""Prompt selection by proxy tasks (ATTIQA §3.3, supplement §A and Table 14).

``load_candidates`` (Table 14 adjectives) -> ``run_selection`` (encode once, score all pairs by arrays)
-> ``summary_rows`` / ``write_summary_csv`` / ``chosen_prompts`` (a prompts JSON for the clip teacher).
"""

from attiqa.prompts.candidates import (
    AttributeCandidates,
    load_candidates,
    load_proxy_distortions,
    make_prompt,
)
from attiqa.prompts.encoders import ClipPromptEncoder, PromptEncoder
from attiqa.prompts.proxy_tasks import distortion_task_srocc, human_task_srocc, pair_differences
from attiqa.prompts.report import (
    chosen_prompts,
    selection_notes,
    summary_rows,
    write_all_pairs_csv,
    write_summary_csv,
)
from attiqa.prompts.selection import SelectionResult, run_selection, select_from_embeddings

__all__ = [
    "AttributeCandidates",
    "ClipPromptEncoder",
    "PromptEncoder",
    "SelectionResult",
    "chosen_prompts",
    "distortion_task_srocc",
    "human_task_srocc",
    "load_candidates",
    "load_proxy_distortions",
    "make_prompt",
    "pair_differences",
    "run_selection",
    "select_from_embeddings",
    "selection_notes",
    "summary_rows",
    "write_all_pairs_csv",
    "write_summary_csv",
]
