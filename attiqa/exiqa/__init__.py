"""ExIQA (paper 004): explainable IQA through distortion attributes."""

from __future__ import annotations

import shlex
import sys


def missing_regressor(scorer: object) -> str:
    """Why ``scorer`` has no overall score — an ExIQA run without its eq. (9) regressor, NaN for every image,
    which `eval` and `genbench agree` cannot measure — in one line naming the run and the fix; "" for a scorer
    with one (any other scorer). Checked after loading, before any image is scored. Here, not in
    ``scorer.py``: an ExIQA scorer exists only once that module is loaded, so the check of any other scorer
    imports nothing (that module loads scikit-image)."""
    module = sys.modules.get("attiqa.exiqa.scorer")
    if module is None or not isinstance(scorer, module.ExiqaScorer) or scorer.regressor is not None:
        return ""
    run = scorer.path.parent
    fix = f"attiqa train exiqa-regressor {shlex.quote(str(run))} --mos MOS.csv"
    return (
        f"{run}: no {module.REGRESSOR_FILE} — without it this ExIQA run has no overall score (eq. 9: NaN), "
        f"only its distortion columns; fit it first: `{fix}`"
    )
