"""Evaluation: correlation metrics (SROCC, PLCC, KRCC, RMSE)."""

from attiqa.evaluation.metrics import correlations, krcc, plcc, rmse, srocc

__all__ = ["correlations", "krcc", "plcc", "rmse", "srocc"]
