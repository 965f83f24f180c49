"""The shared ViT: timm keys, MAE's fixed position embedding, visible-token forward, CLS attention."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer

from methods.backbone import ARCHS, ViT, build_vit, sincos_pos_embed_2d
from methods.masking import random_masking

FIXTURE = Path(__file__).parent / "fixtures" / "mae_parity" / "checkpoint.pth"


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    return build_vit("micro").eval()


@pytest.fixture(scope="module")
def images():
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def test_state_dict_has_plain_timm_keys_and_shapes(vit):
    plain = VisionTransformer(
        img_size=32, patch_size=4, embed_dim=64, depth=4, num_heads=4, global_pool="token", num_classes=0
    )
    ours = {k: v.shape for k, v in vit.state_dict().items()}
    assert ours == {k: v.shape for k, v in plain.state_dict().items()}
    timm_names = {
        "cls_token",
        "pos_embed",
        "patch_embed.proj.weight",
        "norm.weight",
        "blocks.3.attn.qkv.bias",
    }
    assert timm_names <= ours.keys()


def test_sincos_table_matches_the_official_numpy_one():
    official = torch.load(FIXTURE, weights_only=True)["model"]
    for key, dim in (("pos_embed", 64), ("decoder_pos_embed", 32)):
        assert torch.allclose(sincos_pos_embed_2d(dim, 8).unsqueeze(0), official[key], atol=1e-6, rtol=0), key


def test_pos_embed_is_fixed_and_survives_init(vit):
    assert not vit.pos_embed.requires_grad
    table = sincos_pos_embed_2d(64, 8).unsqueeze(0)
    assert torch.equal(vit.pos_embed, table)
    fresh = build_vit("micro")
    fresh.init_weights()  # timm's own init would overwrite the table with trunc_normal noise
    assert torch.equal(fresh.pos_embed, table)
    assert all(m.eps == 1e-6 for m in fresh.modules() if isinstance(m, torch.nn.LayerNorm))


def test_all_archs_have_consistent_heads():
    for name, arch in ARCHS.items():
        assert arch["embed_dim"] % arch["num_heads"] == 0, name
        assert arch["decoder_embed_dim"] % arch["decoder_num_heads"] == 0, name
        assert arch["img_size"] % arch["patch_size"] == 0, name
    for name in ("vit_base_patch16", "vit_large_patch16"):  # MAE's dec512d8b
        decoder = [ARCHS[name][k] for k in ("decoder_embed_dim", "decoder_depth", "decoder_num_heads")]
        assert decoder == [512, 8, 16], name
    tiny = build_vit("tiny")
    assert tiny.num_patches == 64 and tiny.embed_dim == 64


def test_forward_visible_on_all_patches_is_timms_forward_features(vit, images):
    with torch.no_grad():
        assert torch.equal(vit.forward_visible(images), vit.forward_features(images))


def test_visible_forward_never_sees_masked_pixels(vit, images):
    masking = random_masking(torch.rand(2, 64, generator=torch.Generator().manual_seed(2)), 0.75)
    # overwrite the masked patches' pixels: the encoder output must not change
    patch_mask = masking.mask.reshape(2, 1, 8, 1, 8, 1).expand(2, 3, 8, 4, 8, 4).reshape(2, 3, 32, 32)
    altered = torch.where(patch_mask, torch.randn_like(images) * 10, images)
    with torch.no_grad():
        a = vit.forward_visible(images, masking.ids_keep)
        b = vit.forward_visible(altered, masking.ids_keep)
        assert a.shape == (2, 1 + 16, 64)
        assert torch.equal(a, b)
        # and a visible token's output follows it when the visible order changes (no order dependence)
        flipped = vit.forward_visible(images, masking.ids_keep.flip(1))
    assert torch.allclose(flipped[:, 1:], a[:, 1:].flip(1), atol=1e-5)
    assert torch.allclose(flipped[:, 0], a[:, 0], atol=1e-5)


def _hand_cls_attention(block, x):
    """Softmax(q_cls . k / sqrt(d)) over all tokens, from the block's weights, cls column dropped."""
    h = F.layer_norm(x, (x.shape[-1],), block.norm1.weight, block.norm1.bias, eps=1e-6)
    qkv = h @ block.attn.qkv.weight.T + block.attn.qkv.bias  # [B, T, 3D]
    B, T, three_d = qkv.shape
    heads, d = block.attn.num_heads, three_d // 3 // block.attn.num_heads
    q, k, _ = qkv.reshape(B, T, 3, heads, d).unbind(2)  # [B, T, heads, d]
    logits = torch.einsum("bhd,bthd->bht", q[:, 0], k) / d**0.5  # cls query only
    return logits.softmax(dim=-1)[:, :, 1:]  # [B, heads, T - 1]


@pytest.mark.parametrize("block", [0, 2, -1])
def test_cls_attention_matches_hand_computation_and_leaves_blocks_alone(vit, images, block):
    fused_before = [blk.attn.fused_attn for blk in vit.blocks]
    with torch.no_grad():
        tokens, attn = vit.forward_with_attention(images, block=block, per_head=True)
        _, attn_mean = vit.forward_with_attention(images, block=block)
        # the block's input, by running the blocks before it
        x = vit.input_tokens(images)
        for blk in vit.blocks[: range(len(vit.blocks))[block]]:
            x = blk(x)
        expected = _hand_cls_attention(vit.blocks[block], x)
        assert attn.shape == (2, 4, 64)
        assert torch.allclose(attn, expected, atol=1e-6)
        assert torch.allclose(attn_mean, expected.mean(dim=1), atol=1e-6)
        assert (attn.sum(dim=-1) < 1).all()  # not renormalised: the cls column was dropped
        # every block's output is what the plain forward gives, and no block changed its attention path
        assert torch.equal(tokens, vit.forward_features(images))
    assert [blk.attn.fused_attn for blk in vit.blocks] == fused_before


def test_cls_attention_on_visible_tokens(vit, images):
    masking = random_masking(torch.rand(2, 64), 0.75)
    with torch.no_grad():
        tokens, attn = vit.forward_with_attention(images, ids_keep=masking.ids_keep)
        assert torch.equal(tokens, vit.forward_visible(images, masking.ids_keep))
    assert attn.shape == (2, 16)


def test_forward_intermediates_gives_dense_features(vit, images):
    with torch.no_grad():
        feats = vit.forward_intermediates(images, indices=[1, 3], intermediates_only=True)
        x = vit.input_tokens(images)
        for blk in vit.blocks[:2]:
            x = blk(x)
    assert [f.shape for f in feats] == [(2, 64, 8, 8)] * 2
    assert torch.allclose(feats[0], x[:, 1:].reshape(2, 8, 8, 64).permute(0, 3, 1, 2), atol=1e-6)


def test_vit_is_a_timm_vision_transformer():
    assert issubclass(ViT, VisionTransformer)


def test_gradient_checkpointing_gives_the_same_result(images):
    torch.manual_seed(0)
    vit = build_vit("micro")
    masking = random_masking(torch.rand(2, 64), 0.75)
    plain = vit.forward_visible(images, masking.ids_keep)
    plain.sum().backward()
    grad = vit.blocks[0].attn.qkv.weight.grad.clone()
    vit.zero_grad()
    vit.set_grad_checkpointing(True)
    checkpointed = vit.forward_visible(images, masking.ids_keep)
    checkpointed.sum().backward()
    assert torch.allclose(checkpointed, plain) and torch.allclose(vit.blocks[0].attn.qkv.weight.grad, grad)
