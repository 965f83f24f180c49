"""Optimisation pieces every downstream protocol shares: layer-wise lr decay, LARS and MAE's lr schedule.

* ``LayerDecayOptimWrapperConstructor`` (registered in mmengine's ``OPTIM_WRAPPER_CONSTRUCTORS``) builds the
  parameter groups of the official MAE fine-tuning code (``util/lr_decay.py::param_groups_lrd`` at
  facebookresearch/mae@efb2a80), keyed on timm's ViT names. mmseg's own layer-decay constructor keys on
  BEiT/MAE-mmseg names and would silently give every parameter of our ViT the same lr.
* ``LARS`` (registered in mmengine's ``OPTIMIZERS``): MAE's linear-probe optimizer (``util/lars.py``, from
  MoCo v3), written from its update rule.
* ``warmup_cosine_lr`` / ``set_lr``: MAE's ``util/lr_sched.py`` schedule (linear warm-up, then half-cycle
  cosine to ``min_lr``) as a pure function of the fractional epoch, and the per-group ``lr_scale`` it honours;
  ``WarmupCosineLrHook`` applies it before every mmengine training iteration.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import HOOKS, OPTIM_WRAPPER_CONSTRUCTORS, OPTIMIZERS
from timm.models.vision_transformer import VisionTransformer

# ----------------------------------------------------------------------------------------------------------
# Layer-wise lr decay
# ----------------------------------------------------------------------------------------------------------
_BLOCK = re.compile(r"^blocks\.(\d+)\.")
_EMBEDDING_NAMES = ("cls_token", "pos_embed", "reg_token", "dist_token")


def vit_layer_id(name: str, depth: int) -> int:
    """Layer id of a parameter named relative to a timm ViT (MAE's ``get_layer_id_for_vit``).

    ``cls_token``/``pos_embed``/``patch_embed.*`` -> 0; ``blocks.N.*`` -> N + 1; everything else (final norm,
    ``fc_norm``, head, and any module outside the ViT) -> ``depth + 1``.
    """
    if name in _EMBEDDING_NAMES or name.startswith("patch_embed."):
        return 0
    match = _BLOCK.match(name)
    if match:
        return int(match.group(1)) + 1
    return depth + 1


def find_vit(model: nn.Module) -> tuple[str, VisionTransformer]:
    """(name prefix, module) of the first timm ``VisionTransformer`` in ``model`` (prefix ``''``: itself)."""
    for name, module in model.named_modules():
        if isinstance(module, VisionTransformer):
            return (f"{name}." if name else ""), module
    raise TypeError(f"{type(model).__name__} holds no timm VisionTransformer; layer decay needs one")


def layer_decay_param_groups(
    model: nn.Module, base_lr: float, weight_decay: float, layer_decay: float
) -> list[dict[str, Any]]:
    """MAE's ``param_groups_lrd`` on ``model`` (a timm ViT or any module holding one).

    One group per (layer id, decay / no decay); ``lr_scale = layer_decay ** (depth + 1 - layer_id)``, and each
    group's ``lr`` is ``base_lr * lr_scale``. As in MAE, frozen parameters are left out; 1-D parameters
    (biases, norms) and the ViT's ``no_weight_decay()`` names (``pos_embed``, ``cls_token``) get no weight
    decay.
    Parameters outside the ViT (a segmentation head, say) sit at layer ``depth + 1`` (scale 1). Each group
    also lists its ``param_names`` (for logs and tests).
    """
    prefix, vit = find_vit(model)
    depth = len(vit.blocks)
    no_decay_names = {prefix + n for n in vit.no_weight_decay()}
    groups: dict[str, dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        inside_vit = name.startswith(prefix)
        layer_id = vit_layer_id(name[len(prefix) :], depth) if inside_vit else depth + 1
        no_decay = param.ndim == 1 or name in no_decay_names
        key = f"layer_{layer_id}_{'no_decay' if no_decay else 'decay'}"
        if key not in groups:
            scale = layer_decay ** (depth + 1 - layer_id)
            groups[key] = dict(
                params=[],
                param_names=[],
                lr=base_lr * scale,
                lr_scale=scale,
                weight_decay=0.0 if no_decay else weight_decay,
                layer_id=layer_id,
            )
        groups[key]["params"].append(param)
        groups[key]["param_names"].append(name)
    return list(groups.values())


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine optimizer-wrapper constructor with MAE's layer-wise lr decay on a timm ViT.

    Config::

        optim_wrapper = dict(
            optimizer=dict(type="AdamW", lr=lr, weight_decay=0.05, betas=(0.9, 0.999)),
            constructor="LayerDecayOptimWrapperConstructor",
            paramwise_cfg=dict(layer_decay=0.65),
        )

    The optimizer's ``lr`` and ``weight_decay`` are the base values; groups carry ``lr_scale`` for schedules
    that set the lr themselves (``WarmupCosineLrHook``). mmengine's own param schedulers also work: they scale
    each group's initial lr, which already includes the layer scale.
    """

    def add_params(self, params: list[dict], module: nn.Module, prefix: str = "", **kwargs: Any) -> None:
        layer_decay = float(self.paramwise_cfg.get("layer_decay", 1.0))
        base_wd = self.base_wd if self.base_wd is not None else 0.0
        params.extend(layer_decay_param_groups(module, self.base_lr, base_wd, layer_decay))


# ----------------------------------------------------------------------------------------------------------
# LARS
# ----------------------------------------------------------------------------------------------------------
@OPTIMIZERS.register_module()
class LARS(torch.optim.Optimizer):
    """LARS as MAE's linear probe uses it (MoCo v3's variant).

    For a parameter with ``ndim > 1``: ``d = grad + wd * p``, then ``d *= trust_coefficient * |p| / |d|``
    (1 when either norm is 0). Parameters with ``ndim <= 1`` (biases, norms) get neither weight decay nor the
    trust ratio: ``d = grad``. Then heavy-ball momentum without dampening: ``mu = momentum * mu + d``,
    ``p -= lr * mu``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 0.0,
        weight_decay: float = 0.0,
        momentum: float = 0.9,
        trust_coefficient: float = 0.001,
    ) -> None:
        defaults = dict(
            lr=lr, weight_decay=weight_decay, momentum=momentum, trust_coefficient=trust_coefficient
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = p.grad
                if p.ndim > 1:
                    d = d.add(p, alpha=group["weight_decay"])
                    p_norm, d_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(d)
                    ratio = group["trust_coefficient"] * p_norm / d_norm
                    d = d.mul(torch.where((p_norm > 0) & (d_norm > 0), ratio, torch.ones_like(ratio)))
                state = self.state[p]
                if "mu" not in state:
                    state["mu"] = torch.zeros_like(p)
                mu = state["mu"]
                mu.mul_(group["momentum"]).add_(d)
                p.add_(mu, alpha=-group["lr"])
        return loss


# ----------------------------------------------------------------------------------------------------------
# MAE's schedule: linear warm-up, then half-cycle cosine, set every iteration
# ----------------------------------------------------------------------------------------------------------
def warmup_cosine_lr(epoch: float, lr: float, min_lr: float, warmup_epochs: float, epochs: float) -> float:
    """MAE's ``adjust_learning_rate`` at a fractional epoch (``step / steps_per_epoch``): a pure function."""
    if epoch < warmup_epochs:
        return lr * epoch / warmup_epochs
    progress = (epoch - warmup_epochs) / max(epochs - warmup_epochs, 1e-12)
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Every group's lr = ``lr * lr_scale`` (the layer-decay scale; 1 for groups without one), as MAE."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


@HOOKS.register_module()
class WarmupCosineLrHook(Hook):
    """Sets MAE's per-iteration lr before training iterations of an mmengine run (pretraining, fine-tuning).

    The lr is a function of ``runner.iter / steps_per_epoch`` alone (MAE's fractional epoch), so a resumed run
    continues the same curve. ``steps_per_epoch`` counts iterations (micro-batches); ``None`` takes the train
    dataloader's length. With gradient accumulation the lr is set only every ``accum_iter`` iterations and
    held in between, as MAE's engines call ``adjust_learning_rate`` when ``data_iter_step % accum_iter == 0``.
    Used instead of mmengine's ``LinearLR`` + ``CosineAnnealingLR``: those cannot start from 0 as MAE's
    warm-up does, and with no warm-up their chained cosine continues from ``LinearLR``'s start factor.
    """

    priority = "VERY_HIGH"

    def __init__(
        self,
        lr: float,
        min_lr: float,
        warmup_epochs: float,
        epochs: float,
        steps_per_epoch: int | None = None,
        accum_iter: int = 1,
    ) -> None:
        self.lr, self.min_lr = float(lr), float(min_lr)
        self.warmup_epochs, self.epochs = float(warmup_epochs), float(epochs)
        self.steps_per_epoch = steps_per_epoch
        self.accum_iter = int(accum_iter)

    def before_train(self, runner) -> None:
        if self.steps_per_epoch is None:
            self.steps_per_epoch = len(runner.train_dataloader)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        step = runner.iter - runner.iter % self.accum_iter  # the first micro-batch of this optimizer step
        epoch = step / self.steps_per_epoch
        lr = warmup_cosine_lr(epoch, self.lr, self.min_lr, self.warmup_epochs, self.epochs)
        set_lr(runner.optim_wrapper.optimizer, lr)
