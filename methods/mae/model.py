"""MAE: Masked Autoencoders Are Scalable Vision Learners (He et al., CVPR 2022).

Mask 75% of the patches at random, encode only the visible ones, let a light decoder reconstruct every
patch from the encoded tokens plus mask tokens, and regress the (per-patch normalised) pixels of the masked
patches. As ``models_mae.py`` of facebookresearch/mae@efb2a80; see README.md for the fidelity table.
"""

from __future__ import annotations

import torch

from methods.base import MIMModel
from methods.decoder import MAEDecoder


class MAE(MIMModel):
    def __init__(self, **arch) -> None:
        super().__init__(**arch)
        self.decoder = MAEDecoder(
            num_patches=self.num_patches,
            encoder_dim=self.encoder.embed_dim,
            embed_dim=self.decoder_embed_dim,
            depth=self.decoder_depth,
            num_heads=self.decoder_num_heads,
            mlp_ratio=self.mlp_ratio,
            out_dim=self.patch_size**2 * self.encoder.patch_embed.proj.in_channels,
        )

    def forward_encoder(self, imgs: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
        """imgs [B, 3, H, W], ids_keep [B, K] -> latent [B, 1 + K, D] (visible patches only)."""
        return self.encoder.forward_visible(imgs, ids_keep)

    def forward_decoder(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """latent [B, 1 + K, D] -> pred [B, N, p*p*3]: mask tokens fill the removed patches."""
        return self.decoder(latent, ids_restore)

    def forward_loss(self, imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean squared error per patch, averaged over the masked patches only.

        imgs [B, 3, H, W], pred [B, N, p*p*3], mask [B, N] bool (True = masked).
        """
        target = self.pixel_target(imgs)  # [B, N, p*p*3]
        loss = ((pred - target) ** 2).mean(dim=-1)  # [B, N], loss per patch
        mask = mask.to(loss.dtype)
        return (loss * mask).sum() / mask.sum()

    def loss(
        self, images: torch.Tensor, mask: torch.Tensor | None = None, sample_ids: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        masking = self.masking(images, mask, sample_ids)
        latent = self.forward_encoder(images, masking.ids_keep)
        pred = self.forward_decoder(latent, masking.ids_restore)
        return {"loss_rec": self.forward_loss(images, pred, masking.mask)}
