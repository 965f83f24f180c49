"""The MAE decoder, shared by every method (each adds its own heads or targets around it).

Encoder tokens [B, 1 + K, D] (cls first, visible patches in ``ids_keep`` order) are projected to the
decoder width, a learned mask token fills the N - K removed positions, ``ids_restore`` puts the sequence
back into patch order, a fixed sin-cos position embedding is added, and a few transformer blocks, a norm and
a linear head predict one vector per patch. The cls token is dropped from the output. A method whose own
heads predict from the normed features (CMT-MAE) reads ``features`` of a decoder ``without_prediction``.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn as nn
from timm.models.vision_transformer import Block

from methods.backbone import init_mae_, sincos_pos_embed_2d
from methods.masking import gather_tokens


def decoder_blocks(
    embed_dim: int, depth: int, num_heads: int, mlp_ratio: float
) -> tuple[nn.ModuleList, nn.LayerNorm]:
    """MAE's decoder blocks (timm ``Block``, qkv bias, LayerNorm eps 1e-6) and their final norm; also the body
    of a second decoder reading the same input (HPM's loss predictor)."""
    norm_layer = partial(nn.LayerNorm, eps=1e-6)
    blocks = nn.ModuleList(
        Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True, norm_layer=norm_layer) for _ in range(depth)
    )
    return blocks, norm_layer(embed_dim)


class MAEDecoder(nn.Module):
    """Official MAE decoder (``decoder_embed``, ``mask_token``, ``decoder_pos_embed``, ``decoder_blocks``,
    ``decoder_norm``, ``decoder_pred``), here named ``embed``, ``mask_token``, ``pos_embed``, ``blocks``,
    ``norm``, ``pred``."""

    def __init__(
        self,
        num_patches: int,
        encoder_dim: int,
        embed_dim: int = 512,
        depth: int = 8,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
        out_dim: int = 16 * 16 * 3,
    ) -> None:
        super().__init__()
        self.grid_size = int(num_patches**0.5)
        if self.grid_size**2 != num_patches:
            raise ValueError(f"the decoder needs a square patch grid, got {num_patches} patches")
        self.embed = nn.Linear(encoder_dim, embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        # fixed sin-cos table, never trained
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim), requires_grad=False)
        self.blocks, self.norm = decoder_blocks(embed_dim, depth, num_heads, mlp_ratio)
        self.pred: nn.Linear | None = nn.Linear(embed_dim, out_dim)
        self.init_weights()

    def init_weights(self) -> None:
        """Official init: sin-cos table, mask token N(0, 0.02), xavier Linear with zero bias, LN 1/0."""
        with torch.no_grad():
            self.pos_embed.copy_(sincos_pos_embed_2d(self.pos_embed.shape[-1], self.grid_size).unsqueeze(0))
            nn.init.normal_(self.mask_token, std=0.02)
        self.apply(init_mae_)

    def embed_tokens(self, x: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """Encoder tokens [B, 1 + K, D] -> decoder input [B, 1 + N, Dd], in patch order with mask tokens."""
        x = self.embed(x)  # [B, 1 + K, Dd]
        B, N = ids_restore.shape
        mask_tokens = self.mask_token.expand(B, N + 1 - x.shape[1], -1)  # [B, N - K, Dd]
        patches = torch.cat([x[:, 1:], mask_tokens], dim=1)  # [B, N, Dd], shuffled order
        patches = gather_tokens(patches, ids_restore)  # [B, N, Dd], patch order
        x = torch.cat([x[:, :1], patches], dim=1)  # cls first
        return x + self.pos_embed

    def without_prediction(self) -> MAEDecoder:
        """This decoder without its prediction layer, for a method whose own heads read ``features``."""
        self.pred = None
        return self

    def normed(self, x: torch.Tensor) -> torch.Tensor:
        """Decoder input [B, 1 + N, Dd] -> the blocks' output after the final norm [B, 1 + N, Dd]."""
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Decoder input [B, 1 + N, Dd] -> per-patch prediction [B, N, out_dim] (cls dropped)."""
        return self.pred(self.normed(x))[:, 1:]

    def features(self, x: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """Encoder tokens [B, 1 + K, D], ids_restore [B, N] -> normed decoder features [B, N, Dd]."""
        return self.normed(self.embed_tokens(x, ids_restore))[:, 1:]

    def forward(self, x: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """Encoder tokens [B, 1 + K, D], ids_restore [B, N] -> prediction [B, N, out_dim]."""
        return self.predict(self.embed_tokens(x, ids_restore))
