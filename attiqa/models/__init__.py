"""ATTIQA networks: backbone registry and the attribute/MOS model (paper §3.4-3.5)."""

from attiqa.backbone_info import list_backbones
from attiqa.models.attiqa_model import (
    NUM_QUANTILES,
    AttiqaModel,
    AttiqaOutput,
    AttributeHead,
    MosHead,
    build_model_from_config,
    load_model,
    model_from_checkpoint,
    save_model,
)
from attiqa.models.backbones import BACKBONES, Backbone, BackboneSpec, create_backbone

__all__ = [
    "BACKBONES",
    "NUM_QUANTILES",
    "AttiqaModel",
    "AttiqaOutput",
    "AttributeHead",
    "Backbone",
    "BackboneSpec",
    "MosHead",
    "build_model_from_config",
    "create_backbone",
    "list_backbones",
    "load_model",
    "model_from_checkpoint",
    "save_model",
]
