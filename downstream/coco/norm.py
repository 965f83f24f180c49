"""``LN2d``: LayerNorm over the channels of an NCHW map, registered in mmdet's MODELS for ``norm_cfg``.

ViTDet normalises the convolutions of its box and mask heads with ``norm_cfg=dict(type='LN2d')`` (its
project registers the layer); mmdet and mmcv have no such layer. This is timm's ``LayerNorm2d`` under that
name (mmcv's ``build_norm_layer`` sets eps 1e-5; ViTDet's is 1e-6).
"""

from __future__ import annotations

from mmdet.registry import MODELS
from timm.layers import LayerNorm2d

MODELS.register_module(name="LN2d", module=LayerNorm2d)
