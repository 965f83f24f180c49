"""ColorMAE: Exploring data-independent masking strategies in Masked AutoEncoders (Hinojosa et al., 2024).

MAE with one change: the mask. Instead of uniform random noise per patch, each image's mask comes from a
window of a precomputed filtered-noise pattern ("coloured" noise: green = band-pass by default; red, blue,
purple as variants), randomly cropped to the patch grid and flipped; the patches with the largest pattern
values stay visible and the rest (exactly MAE's count) are masked. The masks are data-independent and add no
parameters; their spatial frequency decides how clustered the masked regions are.

As ``models/utils/masking_generator.py::ColorMasking`` and ``models/colormae.py::ColorMAEViT`` of
carlosh93/ColorMAE@f0ad557; the patterns come from ``noise.py`` (the official ones are not in the repository).
See README.md for the fidelity table.
"""

from __future__ import annotations

import torch

from methods.base import MIMModel
from methods.colormae.noise import COLORS, cached_patterns
from methods.decoder import MAEDecoder
from methods.masking import Masking, ids_from_mask, mask_from_scores, num_masked, per_sample_noise

CROPS = ("sample", "batch")


class ColorMAE(MIMModel):
    def __init__(
        self,
        color: str = "green",
        sigma_fine: float = 1.0,
        sigma_coarse: float = 2.0,
        num_patterns: int = 256,
        pattern_size: int = 64,
        pattern_seed: int = 0,
        crop: str = "sample",
        cache_dir: str | None = None,
        **arch,
    ) -> None:
        super().__init__(**arch)
        if color not in COLORS:
            raise ValueError(f"unknown noise colour {color!r}; known: {', '.join(COLORS)}")
        if crop not in CROPS:
            raise ValueError(f"crop must be one of {CROPS}, got {crop!r}")
        self.grid = self.img_size // self.patch_size
        if pattern_size < self.grid:
            raise ValueError(f"pattern_size {pattern_size} is smaller than the patch grid {self.grid}")
        self.color, self.crop = color, crop
        self.pattern_args = dict(
            color=color,
            count=num_patterns,
            size=pattern_size,
            seed=pattern_seed,
            sigma_fine=sigma_fine,
            sigma_coarse=sigma_coarse,
            cache_dir=cache_dir,
        )
        self._patterns: torch.Tensor | None = None  # loaded on first use (not part of the state dict)
        self.decoder = MAEDecoder(
            num_patches=self.num_patches,
            encoder_dim=self.encoder.embed_dim,
            embed_dim=self.decoder_embed_dim,
            depth=self.decoder_depth,
            num_heads=self.decoder_num_heads,
            mlp_ratio=self.mlp_ratio,
            out_dim=self.patch_size**2 * self.encoder.patch_embed.proj.in_channels,
        )

    # ---- 1. the mask: windows of coloured noise ---------------------------------------------------------
    @property
    def patterns(self) -> torch.Tensor:
        """[num_patterns, M, M] filtered-noise patterns, one value per patch (cached on disk)."""
        if self._patterns is None:
            self._patterns = cached_patterns(**self.pattern_args)
        return self._patterns

    def pattern_windows(self, sample_ids: torch.Tensor) -> torch.Tensor:
        """One grid x grid window per sample [B, g, g]: a pattern, a crop offset and two flips, all drawn
        from the sample's keyed noise (seed, global step, dataset index), so resume is exact and a sample's
        window depends on nothing else. With ``crop='batch'`` (the official behaviour) the whole batch
        shares one crop and flips, keyed on (seed, step), and sample b takes pattern b."""
        patterns = self.patterns
        count, size, _ = patterns.shape
        draws = per_sample_noise(self.seed, self.progress.step, sample_ids, 5)  # [B, 5] uniforms
        index = (draws[:, 0] * count).long()
        if self.crop == "batch":
            shared = per_sample_noise(self.seed, self.progress.step, torch.tensor([-1]), 5)
            draws = shared.expand(len(sample_ids), -1)
            index = torch.arange(len(sample_ids)) % count
        offsets = (draws[:, 1:3] * (size - self.grid + 1)).long()  # [B, 2]: row, column
        windows = []
        for b in range(len(sample_ids)):
            r, c = offsets[b].tolist()
            w = patterns[index[b], r : r + self.grid, c : c + self.grid]
            if draws[b, 3] < 0.5:
                w = w.flip(-1)  # horizontal
            if draws[b, 4] < 0.5:
                w = w.flip(-2)  # vertical
            windows.append(w)
        return torch.stack(windows)

    def sample_mask(self, images: torch.Tensor, sample_ids: torch.Tensor | None = None) -> Masking:
        """Keep the patches with the LARGEST pattern values visible, mask the rest: exactly MAE's count.
        (The official code divides each window by its maximum first, which does not change the order.)"""
        if sample_ids is None:
            sample_ids = torch.arange(len(images))
        scores = self.pattern_windows(sample_ids).reshape(len(images), -1)  # [B, N], raster order
        mask = mask_from_scores(scores, num_masked(self.num_patches, self.mask_ratio), largest=False)
        return ids_from_mask(mask.to(images.device))

    # ---- 2. everything else is MAE ------------------------------------------------------------------------
    def forward_encoder(self, imgs: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
        """imgs [B, 3, H, W], ids_keep [B, K] -> latent [B, 1 + K, D] (visible patches only)."""
        return self.encoder.forward_visible(imgs, ids_keep)

    def forward_decoder(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """latent [B, 1 + K, D] -> pred [B, N, p*p*3]: mask tokens fill the removed patches."""
        return self.decoder(latent, ids_restore)

    def forward_loss(self, imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """MAE's loss: per-patch MSE to the (normalised) pixels, averaged over the masked patches."""
        loss = ((pred - self.pixel_target(imgs)) ** 2).mean(dim=-1)  # [B, N]
        mask = mask.to(loss.dtype)
        return (loss * mask).sum() / mask.sum()

    def loss(
        self, images: torch.Tensor, mask: torch.Tensor | None = None, sample_ids: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        masking = self.masking(images, mask, sample_ids)
        latent = self.forward_encoder(images, masking.ids_keep)
        pred = self.forward_decoder(latent, masking.ids_restore)
        return {"loss_rec": self.forward_loss(images, pred, masking.mask)}
