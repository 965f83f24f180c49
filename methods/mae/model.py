"""MAE: Masked Autoencoders Are Scalable Vision Learners (He et al., CVPR 2022).

Mask 75% of the patches at random, encode only the visible ones, let a light decoder reconstruct every
patch from the encoded tokens plus mask tokens, and regress the (per-patch normalised) pixels of the masked
patches. As ``models_mae.py`` of facebookresearch/mae@efb2a80; see README.md for the fidelity table.

MAE is the base class of every other method: each overrides only what its paper changes (the mask generator
``sample_mask``, the decoder ``build_decoder``, the target or an extra term in ``loss``, an EMA copy).
"""

from __future__ import annotations

import torch

from methods.base import MIMModel
from methods.decoder import MAEDecoder
from methods.masking import masked_mean


class MAE(MIMModel):
    def __init__(self, **arch) -> None:
        super().__init__(**arch)
        self.decoder = self.build_decoder()

    def build_decoder(self, out_dim: int | None = None) -> MAEDecoder:
        """The decoder for this encoder, predicting ``out_dim`` values per patch (default: its pixels)."""
        return MAEDecoder(
            num_patches=self.num_patches,
            encoder_dim=self.encoder.embed_dim,
            embed_dim=self.decoder_embed_dim,
            depth=self.decoder_depth,
            num_heads=self.decoder_num_heads,
            mlp_ratio=self.mlp_ratio,
            out_dim=self.patch_dim if out_dim is None else out_dim,
        )

    def forward_encoder(self, imgs: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
        """imgs [B, 3, H, W], ids_keep [B, K] -> latent [B, 1 + K, D] (visible patches only)."""
        return self.encoder.forward_visible(imgs, ids_keep)

    def forward_decoder(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """latent [B, 1 + K, D] -> pred [B, N, p*p*3]: mask tokens fill the removed patches."""
        return self.decoder(latent, ids_restore)

    def patch_losses(self, imgs: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        """Mean squared error of each patch to the pixel target: imgs [B, 3, H, W], pred [B, N, p*p*3] ->
        [B, N]."""
        return ((pred - self.pixel_target(imgs)) ** 2).mean(dim=-1)

    def forward_loss(self, imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The per-patch loss averaged over the masked patches only (mask [B, N] bool, True = masked)."""
        return masked_mean(self.patch_losses(imgs, pred), mask)

    def loss(
        self, images: torch.Tensor, mask: torch.Tensor | None = None, sample_ids: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        masking = self.masking(images, mask, sample_ids)
        latent = self.forward_encoder(images, masking.ids_keep)
        pred = self.forward_decoder(latent, masking.ids_restore)
        return {"loss_rec": self.forward_loss(images, pred, masking.mask)}
