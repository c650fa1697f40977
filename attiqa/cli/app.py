"""The ``attiqa`` app: every subcommand module registers its commands here (and only here)."""

from __future__ import annotations

import typer

from attiqa.cli import distort, eval, exiqa, prompts, score, train

app = typer.Typer(
    name="attiqa",
    help="ATTIQA image quality assessment: pseudo-label, pretrain, fine-tune, score.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
train_app = typer.Typer(
    help="Train ATTIQA from a run config (`attiqa train --config ...`), or ExIQA (`attiqa train exiqa ...`).",
    no_args_is_help=False,
)
app.add_typer(train_app, name="train")
SYNONYMS = {"predict": "score", "infer": "score", "evaluate": "eval", "test": "eval", "fit": "train"}
"""Words a user may type for a command (the usage error suggests the command: ``attiqa predict`` -> score)."""

train.register(app, train_app)
score.register(app)
eval.register(app)
distort.register(app)
prompts.register(app)
exiqa.register(app, train_app)
