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

from methods.base import check_choice
from methods.colormae.noise import cached_patterns
from methods.mae.model import MAE
from methods.masking import Masking, ids_from_mask, mask_from_scores, num_masked, per_sample_noise


class ColorMAE(MAE):
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
        self.crop = check_choice("crop", crop, ("sample", "batch"))
        if pattern_size < (grid := self.encoder.grid_size):
            raise ValueError(f"pattern_size {pattern_size} is smaller than the patch grid {grid}")
        # [num_patterns, M, M], one value per patch; a fixed input like the official pattern files, so not
        # part of the state dict
        self.patterns = cached_patterns(
            color, num_patterns, pattern_size, pattern_seed, sigma_fine, sigma_coarse, cache_dir
        )

    def pattern_windows(self, sample_ids: torch.Tensor) -> torch.Tensor:
        """One grid x grid window per sample [B, g, g]: a pattern, a crop offset and two flips, all drawn
        from the sample's keyed noise (seed, global step, dataset index), so resume is exact and a sample's
        window depends on nothing else. With ``crop='batch'`` (the official behaviour) the whole batch
        shares one crop and flips, keyed on (seed, step), and sample b takes pattern b."""
        count, size, _ = self.patterns.shape
        keys = torch.full_like(sample_ids, -1) if self.crop == "batch" else sample_ids
        draws = per_sample_noise(self.seed, self.progress.step, keys, 5)  # [B, 5] uniforms
        index = torch.arange(len(keys)) % count if self.crop == "batch" else (draws[:, 0] * count).long()
        g = torch.arange(self.encoder.grid_size)
        offsets = (draws[:, 1:3] * (size - len(g) + 1)).long()  # [B, 2]: row, column
        rows = offsets[:, :1] + torch.where(draws[:, 4:5] < 0.5, g.flip(0), g)  # vertical flip
        cols = offsets[:, 1:] + torch.where(draws[:, 3:4] < 0.5, g.flip(0), g)  # horizontal flip
        return self.patterns[index[:, None, None], rows[:, :, None], cols[:, None, :]]

    def sample_mask(self, images: torch.Tensor, sample_ids: torch.Tensor | None = None) -> Masking:
        """Keep the patches with the LARGEST pattern values visible, mask the rest: exactly MAE's count.
        (The official code divides each window by its maximum first, which does not change the order.)"""
        ids = torch.arange(len(images)) if sample_ids is None else sample_ids
        scores = self.pattern_windows(ids).reshape(len(images), -1)  # [B, N], raster order
        mask = mask_from_scores(scores, num_masked(self.num_patches, self.mask_ratio), largest=False)
        return ids_from_mask(mask.to(images.device))
