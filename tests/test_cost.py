"""FLOP counting: the kernels torch's counter misses are registered, and a ViT's count equals the formula."""

from __future__ import annotations

import timm
import torch

from methods.cost import count_flops, vit_forward_flops

aten = torch.ops.aten


def tiny_vit(**kw):
    return timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=4, embed_dim=64, depth=4, num_heads=4, num_classes=0, **kw
    )


def test_vit_forward_flops_equal_the_formula():
    vit = tiny_vit().eval()
    assert all(blk.attn.fused_attn for blk in vit.blocks)  # the fused SDPA path is the one counted
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        flops = count_flops(lambda: vit(x))
    expected = 3 * vit_forward_flops(num_patches=64, num_tokens=65, embed_dim=64, depth=4, patch_size=4)
    assert flops == expected


def test_fused_cpu_attention_is_counted_forward_and_backward():
    from torch.utils.flop_counter import FlopCounterMode

    q, k, v = (torch.randn(2, 4, 17, 16, requires_grad=True) for _ in range(3))
    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.scaled_dot_product_attention(q, k, v).sum().backward()
    counts = counter.get_flop_counts()["Global"]
    forward = 2 * (2 * 2 * 4 * 17 * 17 * 16)  # q @ k^T and attn @ v
    assert counts[aten._scaled_dot_product_flash_attention_for_cpu] == forward
    assert counts[aten._scaled_dot_product_flash_attention_for_cpu_backward] == 2.5 * forward


def test_multihead_attention_fast_path_is_counted():
    b, length, e = 2, 17, 64
    mha = torch.nn.MultiheadAttention(e, 4, batch_first=True).eval()
    x = torch.randn(b, length, e)
    with torch.no_grad():
        flops = count_flops(lambda: mha(x, x, x, need_weights=False))
    assert flops == 2 * b * length * e * 3 * e + 2 * b * length * e * e + 4 * b * length * length * e


def test_training_step_counts_backward_exactly():
    vit = tiny_vit()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        forward = count_flops(lambda: vit(x))
    step = count_flops(lambda: vit(x).sum().backward())
    # Matrix products: backward = 2x forward, minus the input gradient of the patch projection (the image
    # needs none). Attention: torch's SDPA backward formula is 2.5x its forward (it recomputes the scores).
    patch_input_grad = 2 * 2 * 64 * 3 * 16 * 64
    attention_forward = 2 * 4 * (4 * 65 * 65 * 64)  # batch 2, depth 4, two products of 2*T*T*D
    assert step == 3 * forward - patch_input_grad + attention_forward // 2
