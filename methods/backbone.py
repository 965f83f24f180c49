"""The one ViT every method trains and every protocol evaluates (its file: ``methods/encoder_file.py``).

``ViT`` is timm's ``VisionTransformer`` with MAE's choices (fixed 2-D sin-cos position embedding, LayerNorm
eps 1e-6, qkv bias, cls token, no classifier head), so its state-dict keys are timm's (``patch_embed.proj.*``,
``cls_token``, ``pos_embed``, ``blocks.{i}.*``, ``norm.*``) and the official MAE encoder weights load into
it with ``strict=True``. On top of timm it adds what masked image modeling needs:

* ``forward_visible(imgs, ids_keep)``: the MAE encoder on the visible patches only (``input_tokens`` is
  its input, for methods that run the blocks themselves);
* ``forward_features(imgs)`` (timm's): all tokens;
* ``forward_with_attention(imgs, block)``: all tokens plus the CLS->patch attention of one block, computed
  beside that block so every block (that one included) keeps timm's fused attention path;
* ``forward_intermediates(...)`` (timm's): features of several blocks for the dense protocols.

The encoder file (``methods.encoder_file.export_encoder``) holds these timm-keyed tensors, and
``methods.encoder_file.load_encoder`` is the one strict loader every protocol uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import torch
import torch.nn as nn
from timm.models import checkpoint_seq
from timm.models.vision_transformer import Attention, VisionTransformer

from methods.masking import gather_tokens

# ----------------------------------------------------------------------------------------------------------
# Named architectures. Keys are the official MAE argument names, so a budget or a command line can override
# any of them. `vit_small_patch16` has no MAE release; its decoder is RC-MAE's (dec512d8b).
# ----------------------------------------------------------------------------------------------------------
ARCHS: dict[str, dict[str, Any]] = {
    "micro": dict(
        img_size=32, patch_size=4, embed_dim=64, depth=4, num_heads=4,
        decoder_embed_dim=64, decoder_depth=1, decoder_num_heads=4, mlp_ratio=4.0,
    ),
    # the CPU budgets' ViT (reproduce/budgets/README.md, pilots): shapes at 64 px, an 8x8 token grid, micro's
    # width
    "tiny": dict(
        img_size=64, patch_size=8, embed_dim=64, depth=4, num_heads=4,
        decoder_embed_dim=64, decoder_depth=1, decoder_num_heads=4, mlp_ratio=4.0,
    ),
    "vit_small_patch16": dict(
        img_size=224, patch_size=16, embed_dim=384, depth=12, num_heads=6,
        decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16, mlp_ratio=4.0,
    ),
    "vit_base_patch16": dict(
        img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12,
        decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16, mlp_ratio=4.0,
    ),
    "vit_large_patch16": dict(
        img_size=224, patch_size=16, embed_dim=1024, depth=24, num_heads=16,
        decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16, mlp_ratio=4.0,
    ),
}  # fmt: skip

#: The keys of an ARCHS entry that shape the encoder (the rest shape the decoder).
ENCODER_ARCH_KEYS = ("img_size", "patch_size", "embed_dim", "depth", "num_heads", "mlp_ratio")
#: Every architecture key; together with `mask_ratio` and `norm_pix_loss` they belong to the budget.
ARCH_KEYS = (*ENCODER_ARCH_KEYS, "decoder_embed_dim", "decoder_depth", "decoder_num_heads")


def resolve_arch(arch: str | Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
    """An ARCHS entry (by name) or a dict of arch keys, with overrides applied."""
    if isinstance(arch, str):
        if arch not in ARCHS:
            raise KeyError(f"unknown architecture {arch!r}; known: {', '.join(ARCHS)}")
        arch = ARCHS[arch]
    return {**arch, **overrides}


# ----------------------------------------------------------------------------------------------------------
# MAE's fixed position embedding and initialisation (shared with the decoder)
# ----------------------------------------------------------------------------------------------------------
def sincos_pos_embed_2d(
    embed_dim: int, grid_size: int | tuple[int, int], cls_token: bool = True
) -> torch.Tensor:
    """MAE's fixed 2-D sin-cos table, [1 + G*G, D] (a zero row for the cls token first) or [G*G, D].

    Computed in float64 and rounded once to float32, as the official NumPy code does. As there, the first
    half of the channels encodes the patch's column and the second half its row. ``grid_size`` may be
    ``(rows, cols)`` for a non-square grid (a video frame's, in the DAVIS protocol).
    """
    if embed_dim % 4:
        raise ValueError(f"sin-cos position embedding needs embed_dim divisible by 4, got {embed_dim}")
    grid_h, grid_w = (grid_size, grid_size) if isinstance(grid_size, int) else grid_size
    rows, cols = torch.meshgrid(
        torch.arange(grid_h, dtype=torch.float64),
        torch.arange(grid_w, dtype=torch.float64),
        indexing="ij",
    )
    emb = torch.cat([_sincos_1d(embed_dim // 2, cols), _sincos_1d(embed_dim // 2, rows)], dim=1)  # [G*G, D]
    if cls_token:
        emb = torch.cat([torch.zeros(1, embed_dim, dtype=torch.float64), emb], dim=0)
    return emb.float()


def _sincos_1d(dim: int, pos: torch.Tensor) -> torch.Tensor:
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))  # [dim/2]
    angles = pos.reshape(-1, 1) * omega  # [M, dim/2]
    return torch.cat([angles.sin(), angles.cos()], dim=1)  # [M, dim]


def init_mae_(module: nn.Module) -> None:
    """MAE's init of one module: xavier-uniform Linear, zero bias (as official JAX ViT); LayerNorm 1/0."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


# ----------------------------------------------------------------------------------------------------------
# The ViT
# ----------------------------------------------------------------------------------------------------------
class ViT(VisionTransformer):
    """timm's VisionTransformer as MAE builds it: fixed sin-cos position embedding, LN eps 1e-6, no head."""

    def __init__(
        self,
        img_size: int | tuple[int, int] = 224,  # (height, width) for a non-square input (video frames)
        patch_size: int = 16,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        in_chans: int = 3,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__(
            img_size=img_size,
            patch_size=patch_size,
            in_chans=in_chans,
            num_classes=0,
            global_pool="token",
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            qkv_bias=True,
            norm_layer=partial(nn.LayerNorm, eps=1e-6),
            drop_path_rate=drop_path_rate,
            weight_init="skip",  # timm's schemes would overwrite the sin-cos table; ours runs below
        )
        self.pos_embed.requires_grad_(False)  # fixed, never trained (as MAE)
        self.init_weights()

    @property
    def grid_size(self) -> int:
        return self.patch_embed.grid_size[0]

    @property
    def num_patches(self) -> int:
        return self.patch_embed.num_patches

    def init_weights(self, mode: str = "", needs_reset: bool = True) -> None:
        """MAE's encoder initialisation. Overrides timm's, so nothing can reset the sin-cos table by accident.

        The patch-embedding weight is initialised as a Linear layer (xavier on its [D, 3*p*p] view); its bias
        keeps PyTorch's Conv2d default, as in the official code.
        """
        with torch.no_grad():
            grid = tuple(self.patch_embed.grid_size)
            self.pos_embed.copy_(sincos_pos_embed_2d(self.embed_dim, grid).unsqueeze(0))
            w = self.patch_embed.proj.weight
            nn.init.xavier_uniform_(w.view(w.shape[0], -1))
            nn.init.normal_(self.cls_token, std=0.02)
        self.apply(init_mae_)

    # ---- forward passes -------------------------------------------------------------------------------
    def embed_patches(self, imgs: torch.Tensor) -> torch.Tensor:
        """Patch embedding plus position embedding, without the cls token: [B, 3, H, W] -> [B, N, D]."""
        return self.patch_embed(imgs) + self.pos_embed[:, 1:, :]

    def prepend_cls(self, x: torch.Tensor) -> torch.Tensor:
        """[B, K, D] -> [B, 1 + K, D], the cls token (with its position embedding) first."""
        cls = self.cls_token + self.pos_embed[:, :1, :]
        return torch.cat([cls.expand(x.shape[0], -1, -1), x], dim=1)

    def input_tokens(self, imgs: torch.Tensor, ids_keep: torch.Tensor | None = None) -> torch.Tensor:
        """The blocks' input [B, 1 + K, D]: cls, then the visible patches (all N when ``ids_keep`` is None).

        The position embedding is added before the masked patches are dropped, so each visible token keeps
        its own position.
        """
        x = self.embed_patches(imgs)  # [B, N, D]
        if ids_keep is not None:
            x = gather_tokens(x, ids_keep)  # [B, K, D]
        return self.prepend_cls(x)  # [B, 1 + K, D]

    def forward_visible(self, imgs: torch.Tensor, ids_keep: torch.Tensor | None = None) -> torch.Tensor:
        """MAE's encoder: imgs [B, 3, H, W], ids_keep [B, K] -> normed tokens [B, 1 + K, D] (cls first).

        ``ids_keep=None`` runs on all N patches (then equal to timm's ``forward_features``).
        """
        x = self.input_tokens(imgs, ids_keep)
        # timm's switch (set_grad_checkpointing) trades compute for memory at the large budgets
        x = checkpoint_seq(self.blocks, x) if self.grad_checkpointing else self.blocks(x)
        return self.norm(x)

    def forward_with_attention(
        self,
        imgs: torch.Tensor,
        block: int = -1,
        ids_keep: torch.Tensor | None = None,
        per_head: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normed tokens [B, 1 + K, D] and the CLS->patch attention of block ``block``.

        The attention is the cls token's softmax row over all 1 + K tokens with the cls column dropped
        ([B, K], head-averaged, or [B, heads, K] with ``per_head``); it is not renormalised, so a row sums to
        1 minus the cls token's attention to itself. It is recomputed from that block's input beside the
        block, so all blocks still run timm's fused attention and the tokens equal ``forward_visible``'s.
        """
        index = range(len(self.blocks))[block]  # negative indices count from the last block
        x = self.input_tokens(imgs, ids_keep)
        attn = None
        for i, blk in enumerate(self.blocks):
            if i == index:
                attn = cls_attention(blk.attn, blk.norm1(x))  # [B, heads, K]
            x = blk(x)
        assert attn is not None
        return self.norm(x), attn if per_head else attn.mean(dim=1)


def cls_attention(attn: Attention, x: torch.Tensor) -> torch.Tensor:
    """Softmax attention of the cls query over the patch keys of one timm ``Attention``: [B, heads, T - 1].

    ``x`` is the attention's input (after the block's ``norm1``), [B, T, D] with the cls token first.
    """
    B, T, _ = x.shape
    qkv = attn.qkv(x).reshape(B, T, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k = attn.q_norm(qkv[0]), attn.k_norm(qkv[1])  # [B, heads, T, hd]
    logits = (q[:, :, :1] * attn.scale) @ k.transpose(-2, -1)  # [B, heads, 1, T]
    return logits.softmax(dim=-1)[:, :, 0, 1:]  # [B, heads, T - 1]


def build_vit(arch: str | Mapping[str, Any] = "micro", **overrides: Any) -> ViT:
    """The encoder of a named architecture (or a dict of arch keys); decoder keys are ignored."""
    cfg = resolve_arch(arch, **overrides)
    extra = {k: cfg[k] for k in ("in_chans", "drop_path_rate") if k in cfg}
    return ViT(**{k: cfg[k] for k in ENCODER_ARCH_KEYS}, **extra)


def vit_arch(vit: VisionTransformer) -> dict[str, Any]:
    """The encoder arch keys of a built timm ViT (recorded in every encoder file)."""
    blk = vit.blocks[0]
    return dict(
        img_size=vit.patch_embed.img_size[0],
        patch_size=vit.patch_embed.patch_size[0],
        embed_dim=vit.embed_dim,
        depth=len(vit.blocks),
        num_heads=blk.attn.num_heads,
        mlp_ratio=blk.mlp.fc1.out_features / vit.embed_dim,
    )
