"""The networks of the IN-1K protocols: the frozen encoder with its probe head, and the fine-tune classifier.

Every encoder enters through ``methods.encoder_file.load_encoder`` (strict): the architecture comes from the
file's ``meta['arch']`` and every encoder tensor must land in the model.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn as nn
from mmengine.model import BaseModel
from timm.layers import trunc_normal_
from timm.loss import SoftTargetCrossEntropy

from methods.backbone import ARCHS, ENCODER_ARCH_KEYS, ViT, build_vit, resolve_arch
from methods.encoder_file import load_encoder, read_encoder


def encoder_arch(encoder: str | os.PathLike | Mapping[str, Any]) -> dict[str, Any]:
    """The encoder arch keys recorded in an encoder file (or payload) by ``export_encoder``."""
    payload = read_encoder(encoder) if isinstance(encoder, (str, os.PathLike)) else encoder
    arch = dict(payload.get("meta", {}).get("arch") or {})
    if all(k in arch for k in ENCODER_ARCH_KEYS):
        return {k: arch[k] for k in ENCODER_ARCH_KEYS}
    # A budget's `model` section ({'arch': 'micro', ...}) recorded in place of the resolved keys.
    if isinstance(arch.get("arch"), str) and arch["arch"] in ARCHS:
        return {k: v for k, v in resolve_arch(arch["arch"]).items() if k in ENCODER_ARCH_KEYS}
    raise ValueError(
        f"encoder meta['arch'] = {arch!r} names no architecture; export it with "
        "methods.encoder_file.export_encoder"
    )


def load_frozen_encoder(encoder: str | os.PathLike | Mapping[str, Any]) -> tuple[ViT, dict[str, Any]]:
    """(frozen ViT in eval mode with the file's weights, load report dict). Keeps the final norm (CLS token
    after the final norm is MAE's probe feature)."""
    vit = build_vit(encoder_arch(encoder))
    report = load_encoder(encoder, vit)
    vit.requires_grad_(False).eval()
    return vit, report.to_dict()


def probe_head(dim: int, num_classes: int, init_std: float = 0.01) -> nn.Sequential:
    """MAE's probe head: BatchNorm1d(affine=False, eps=1e-6), then Linear (trunc_normal weight, zero bias)."""
    linear = nn.Linear(dim, num_classes)
    trunc_normal_(linear.weight, std=init_std)
    nn.init.zeros_(linear.bias)
    return nn.Sequential(nn.BatchNorm1d(dim, affine=False, eps=1e-6), linear)


def finetune_vit(
    encoder: str | os.PathLike | Mapping[str, Any],
    num_classes: int,
    drop_path: float,
    head_init_std: float = 2e-5,
) -> tuple[ViT, dict[str, Any]]:
    """MAE's fine-tuning network (``models_vit.py`` with ``global_pool=True``) and the load report.

    Mean of the patch tokens (no cls), then ``fc_norm`` (LayerNorm eps 1e-6) and a Linear head with weight
    trunc_normal(std=2e-5), bias 0. The encoder's final norm is removed (MAE deletes ``self.norm``), so the
    file's ``norm.*`` is dropped by the loader's declared ``drop_final_norm`` transform. The position
    embedding is resampled when the grid differs (as MAE's ``interpolate_pos_embed``) and is trained, as in
    MAE, where timm's ``pos_embed`` is a plain parameter (excluded from weight decay by ``no_weight_decay``).
    """
    vit = build_vit(encoder_arch(encoder), drop_path_rate=drop_path)
    dim = vit.embed_dim
    vit.global_pool = "avg"
    vit.norm = nn.Identity()
    vit.fc_norm = nn.LayerNorm(dim, eps=1e-6)
    vit.head = nn.Linear(dim, num_classes)
    vit.num_classes = num_classes
    report = load_encoder(encoder, vit, interpolate_pos_embed=True, drop_final_norm=True)
    trunc_normal_(vit.head.weight, std=head_init_std)
    nn.init.zeros_(vit.head.bias)
    vit.pos_embed.requires_grad_(True)
    return vit, report.to_dict()


class FineTuneClassifier(BaseModel):
    """mmengine wrapper of the fine-tuning ViT.

    ``loss``: mixup/cutmix (timm's ``Mixup``, label smoothing folded into its soft targets) and
    ``SoftTargetCrossEntropy``, as MAE; without mixup, label-smoothed cross-entropy. ``predict``: one dict
    per image with its top-5 classes and label (read by ``TopKAccuracy``).
    """

    def __init__(self, vit: ViT, mixup: Any | None = None, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.vit = vit
        self.mixup = mixup
        self.soft_ce = SoftTargetCrossEntropy()
        self.label_smoothing = float(label_smoothing)

    def init_weights(self) -> None:
        """No-op: the Runner calls ``init_weights`` on the model, which would reach ``ViT.init_weights`` and
        re-draw the loaded encoder and the protocol's head (``run_finetune`` checks that it does not)."""

    def forward(self, inputs: torch.Tensor, data_samples: torch.Tensor | None = None, mode: str = "tensor"):
        if mode == "loss":
            images, targets = inputs, data_samples
            if self.mixup is not None:
                images, soft = self.mixup(images, targets)
                return {"loss_cls": self.soft_ce(self.vit(images), soft)}
            logits = self.vit(images)
            return {
                "loss_cls": nn.functional.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)
            }
        logits = self.vit(inputs)
        if mode == "tensor":
            return logits
        if mode == "predict":
            k = min(5, logits.shape[1])
            topk = logits.topk(k, dim=1).indices.cpu()
            labels = data_samples.cpu()
            return [dict(topk=topk[i], label=labels[i]) for i in range(len(labels))]
        raise ValueError(f"unknown mode {mode!r}")
