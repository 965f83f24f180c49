"""Masks and the index tensors that apply them, one convention for every method.

A mask is a boolean tensor [B, N] over the patches in their original (raster) order, **True = masked
(removed from the encoder's input)**, as the official MAE's 1 = remove. Indices never count the cls token.

From a mask come two index tensors, as in official MAE:

* ``ids_keep`` [B, K]: the visible patches, gathered into the encoder's input;
* ``ids_restore`` [B, N]: puts the decoder's sequence (K visible tokens, then N - K mask tokens) back into
  the original order.

Mask generators (random here; noise patterns, loss- or attention-guided ones in method folders) produce a
mask or a score and go through ``ids_from_mask`` / ``mask_from_scores``, so no method rewrites the
shuffle-and-gather scaffold. Mask randomness comes from ``per_sample_noise``, keyed on (seed, global step,
sample index): a resumed run and a run on any number of processes draw the same masks.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

import torch


class Masking(NamedTuple):
    mask: torch.Tensor  # [B, N] bool, True = masked
    ids_keep: torch.Tensor  # [B, K] long, the visible patches
    ids_restore: torch.Tensor  # [B, N] long, un-shuffles [visible; masked] back to the original order


def num_visible(num_patches: int, mask_ratio: float) -> int:
    """Visible patches per image, as official MAE: ``int(N * (1 - mask_ratio))`` (49 of 196 at 0.75)."""
    return int(num_patches * (1 - mask_ratio))


def num_masked(num_patches: int, mask_ratio: float) -> int:
    return num_patches - num_visible(num_patches, mask_ratio)


def per_sample_noise(seed: int, step: int, sample_ids: torch.Tensor, num_patches: int) -> torch.Tensor:
    """Uniform noise [B, N] in [0, 1), row b drawn from a generator keyed on (seed, step, sample_ids[b]).

    A sample's noise depends on nothing else: not on the batch it is in, its position there, the process
    that holds it, or what was drawn before (so resume needs no RNG state). Returned on the CPU.
    """
    rows = []
    for sample_id in sample_ids.detach().cpu().tolist():
        g = torch.Generator().manual_seed(_key(seed, step, int(sample_id)))
        rows.append(torch.rand(num_patches, generator=g))
    return torch.stack(rows) if rows else torch.empty(0, num_patches)


def _key(*parts: int) -> int:
    # A hash, not arithmetic: (seed, step, id) and (seed, step + 1, id - k) must not collide.
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def random_masking(noise: torch.Tensor, mask_ratio: float) -> Masking:
    """Official MAE's per-sample random masking, with the noise [B, N] given instead of drawn.

    argsort the noise ascending (small = keep, large = remove), keep the first K; ``ids_keep`` is in that
    shuffled order, exactly as official, and ``ids_restore`` inverts the shuffle.
    """
    B, N = noise.shape
    len_keep = num_visible(N, mask_ratio)
    ids_shuffle = torch.argsort(noise, dim=1)  # [B, N]
    ids_restore = torch.argsort(ids_shuffle, dim=1)  # [B, N]
    ids_keep = ids_shuffle[:, :len_keep]  # [B, K]
    # True from position len_keep on in shuffled order, then un-shuffled to the original order
    mask = torch.arange(N, device=noise.device).expand(B, N) >= len_keep
    mask = torch.gather(mask, dim=1, index=ids_restore)
    return Masking(mask, ids_keep, ids_restore)


def ids_from_mask(mask: torch.Tensor) -> Masking:
    """``ids_keep`` / ``ids_restore`` for any boolean mask [B, N] with the same number masked in every row.

    Visible patches keep their original order (a stable sort puts False before True).
    """
    if mask.dtype != torch.bool or mask.dim() != 2:
        got = f"{mask.dtype} {tuple(mask.shape)}"
        raise ValueError(f"mask must be a bool tensor [B, N] (True = masked), got {got}")
    counts = mask.sum(dim=1)
    if counts.numel() and not bool((counts == counts[0]).all()):
        raise ValueError(f"every row must mask the same number of patches, got counts {counts.tolist()}")
    ids_shuffle = torch.argsort(mask.to(torch.uint8), dim=1, stable=True)  # [B, N]: visible first
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    len_keep = mask.shape[1] - (int(counts[0]) if counts.numel() else 0)
    return Masking(mask, ids_shuffle[:, :len_keep], ids_restore)


def mask_from_scores(scores: torch.Tensor, num_masked: int, largest: bool = True) -> torch.Tensor:
    """Mask the ``num_masked`` highest-scoring patches of each row (lowest with ``largest=False``).

    scores [B, N] -> mask [B, N] bool. Ties go to the lower patch index, so the mask is deterministic.
    Loss-guided (HPM) and attention-guided (CMT-MAE) masking build on this.
    """
    order = torch.argsort(scores, dim=1, descending=largest, stable=True)  # [B, N]
    mask = torch.zeros_like(scores, dtype=torch.bool)
    return mask.scatter(1, order[:, :num_masked], True)


def gather_tokens(x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """x [B, N, D], ids [B, K] -> x[b, ids[b]] [B, K, D]."""
    return torch.gather(x, dim=1, index=ids.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def masked_mean(per_patch: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """per_patch [B, N], mask [B, N] bool (True = masked) -> the mean over the masked patches."""
    mask = mask.to(per_patch.dtype)
    return (per_patch * mask).sum() / mask.sum()
