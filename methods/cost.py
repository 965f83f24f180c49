"""Training cost accounting: FLOPs of one full training step, counted with ``torch.utils.flop_counter``.

Unit: FLOPs = 2 x multiply-adds, as torch's counter reports them (mmpretrain's tables quote multiply-adds,
i.e. half). Only matrix products, convolutions and attention are counted; element-wise ops, norms and
softmax are not (they are a few percent of a ViT's cost, and the papers' FLOP figures leave them out too).

torch's counter has no formula for two kernels this suite runs, so it would score them as 0 FLOPs:
- ``aten._scaled_dot_product_flash_attention_for_cpu`` (+ backward): the fused SDPA kernel on CPU, used by
  timm's attention whenever ``fused_attn`` is on;
- ``aten._native_multi_head_attention``: ``nn.MultiheadAttention``'s inference fast path, which open_clip's
  blocks take in eval mode (the frozen CLIP teacher).
They are registered below, once, when this module is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import (
    FlopCounterMode,
    register_flop_formula,
    sdpa_backward_flop_count,
    sdpa_flop_count,
)

aten = torch.ops.aten

FLOPS_UNIT = "FLOPs (2 x multiply-adds)"


@register_flop_formula(aten._scaled_dot_product_flash_attention_for_cpu)
def _sdpa_cpu_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


@register_flop_formula(aten._scaled_dot_product_flash_attention_for_cpu_backward)
def _sdpa_cpu_backward_flop(
    grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs
) -> int:
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


@register_flop_formula(aten._native_multi_head_attention)
def _native_mha_flop(
    query_shape, key_shape, value_shape, embed_dim, num_heads, *args, out_shape=None, **kwargs
) -> int:
    b, lq, e = query_shape
    lk = key_shape[1]
    projections = 2 * b * e * e * (lq + 2 * lk) + 2 * b * lq * e * e  # q, k, v in; output out
    attention = 2 * b * lq * lk * e * 2  # q @ k^T and attn @ v, all heads together
    return projections + attention


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of everything ``fn`` runs (forward, backward, extra teacher forwards alike)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def vit_forward_flops(
    *,
    num_patches: int,
    num_tokens: int,
    embed_dim: int,
    depth: int,
    mlp_ratio: float = 4.0,
    patch_size: int,
    in_chans: int = 3,
) -> int:
    """Analytic forward FLOPs of a pre-norm ViT encoder (matrix products only).

    ``num_patches`` are embedded by the patch projection; ``num_tokens`` (visible patches + CLS) go through
    the blocks. Per block: qkv 6TD^2, output projection 2TD^2, MLP 4rTD^2, and the two attention products
    2T^2D each.
    """
    t, d = num_tokens, embed_dim
    patch_embed = 2 * num_patches * in_chans * patch_size**2 * d
    per_block = (8 + 4 * mlp_ratio) * t * d * d + 4 * t * t * d
    return int(patch_embed + depth * per_block)
