"""A reference "encoder" for DAVIS that sees colour and nothing else: each patch's feature is the histogram of
its pixels' colours (``bins`` levels per RGB channel), propagated exactly as an encoder's patch tokens are.
What it scores is what colour alone carries on a dataset; an encoder that learnt shapes should score above it.

    enc = ColourHistogramFrames(patch_size=8, mean=r["mean"], std=r["std"])
    run_davis(inputs, frames=enc)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F


class ColourHistogramFrames:
    """The ``FrameEncoder`` interface (``patch_size``, ``device``, ``features``, ``reports``) over colour
    histograms: ``features`` takes the normalised frames the protocol prepares and undoes the
    normalisation."""

    def __init__(
        self,
        patch_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        bins: int = 4,
        device: torch.device | str = "cpu",
    ) -> None:
        self.patch_size, self.bins, self.device = int(patch_size), int(bins), torch.device(device)
        self.mean = torch.tensor(mean, dtype=torch.float32)[None, :, None, None]
        self.std = torch.tensor(std, dtype=torch.float32)[None, :, None, None]
        self.reports: dict[tuple[int, int], dict[str, Any]] = {}

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, rows, cols]`` normalised frames -> ``[B, rows/p * cols/p, bins**3]``: per patch, the share
        of its pixels in each colour cell."""
        size = tuple(x.shape[-2:])
        self.reports.setdefault(size, {"encoder": f"colour histogram, {self.bins}^3 bins", "transforms": []})
        rgb = (x.cpu().float() * self.std + self.mean).clamp(0, 1)
        level = (rgb * self.bins).long().clamp(max=self.bins - 1)  # [B, 3, H, W]
        cell = (level[:, 0] * self.bins + level[:, 1]) * self.bins + level[:, 2]  # [B, H, W]
        onehot = F.one_hot(cell, self.bins**3).permute(0, 3, 1, 2).float()  # [B, bins^3, H, W]
        shares = F.avg_pool2d(onehot, self.patch_size)  # [B, bins^3, H/p, W/p]
        return shares.flatten(2).transpose(1, 2).to(self.device)
