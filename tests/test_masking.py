"""Mask <-> ids helpers: exact counts, inverse permutations, keyed noise."""

import pytest
import torch

from methods.masking import (
    gather_tokens,
    ids_from_mask,
    mask_from_scores,
    num_masked,
    num_visible,
    per_sample_noise,
    random_masking,
)


def test_counts_follow_official_rounding():
    assert num_visible(196, 0.75) == 49 and num_masked(196, 0.75) == 147
    assert num_visible(64, 0.75) == 16
    assert num_visible(10, 0.75) == 2  # int() truncates, as official


def test_random_masking_counts_and_inverse():
    noise = torch.rand(5, 64, generator=torch.Generator().manual_seed(0))
    mask, ids_keep, ids_restore = random_masking(noise, 0.75)
    assert mask.dtype == torch.bool and mask.shape == (5, 64)
    assert (mask.sum(dim=1) == 48).all()
    # ids_restore inverts ids_shuffle (= argsort(noise)); ids_keep are its first K entries
    ids_shuffle = torch.argsort(noise, dim=1)
    assert torch.equal(torch.gather(ids_shuffle, 1, ids_restore), torch.arange(64).expand(5, 64))
    assert torch.equal(ids_keep, ids_shuffle[:, :16])
    # the kept patches are exactly the unmasked ones, and they have the smallest noise
    assert not torch.gather(mask, 1, ids_keep).any()
    kept_noise = torch.gather(noise, 1, ids_keep).max(dim=1).values
    assert (noise.masked_fill(~mask, 2.0).min(dim=1).values > kept_noise).all()


def test_ids_restore_puts_decoder_sequence_back_in_patch_order():
    noise = torch.rand(3, 16, generator=torch.Generator().manual_seed(1))
    for masking in (random_masking(noise, 0.5), ids_from_mask(random_masking(noise, 0.5).mask)):
        tokens = torch.arange(16.0).expand(3, 16).unsqueeze(-1)  # token value = its patch index
        visible = gather_tokens(tokens, masking.ids_keep)
        filler = torch.full((3, 16 - visible.shape[1], 1), -1.0)  # "mask tokens"
        restored = gather_tokens(torch.cat([visible, filler], dim=1), masking.ids_restore)[..., 0]
        expected = torch.arange(16.0).expand(3, 16).masked_fill(masking.mask, -1.0)
        assert torch.equal(restored, expected)


def test_ids_from_mask_round_trip_keeps_original_order():
    mask = random_masking(torch.rand(4, 49), 0.75).mask
    out = ids_from_mask(mask)
    assert torch.equal(out.mask, mask)
    assert (out.ids_keep.diff(dim=1) > 0).all()  # visible patches in raster order
    assert not torch.gather(mask, 1, out.ids_keep).any()
    assert out.ids_keep.shape == (4, 12)


def test_ids_from_mask_rejects_bad_masks():
    ragged = torch.zeros(2, 8, dtype=torch.bool)
    ragged[0, :3] = True
    ragged[1, :4] = True
    with pytest.raises(ValueError, match="same number"):
        ids_from_mask(ragged)
    with pytest.raises(ValueError, match="bool"):
        ids_from_mask(torch.zeros(2, 8))  # a float 0/1 mask is ambiguous: refuse it


def test_per_sample_noise_depends_only_on_seed_step_and_sample_id():
    n = 64
    pair = per_sample_noise(seed=3, step=10, sample_ids=torch.tensor([7, 42]), num_patches=n)
    four = per_sample_noise(seed=3, step=10, sample_ids=torch.tensor([42, 1, 7, 9]), num_patches=n)
    assert torch.equal(pair[0], four[2]) and torch.equal(pair[1], four[0])
    # ... and so do the masks drawn from it
    assert torch.equal(random_masking(pair, 0.75).mask[0], random_masking(four, 0.75).mask[2])
    # every part of the key matters
    base = per_sample_noise(3, 10, torch.tensor([7]), n)
    for other in (
        per_sample_noise(4, 10, torch.tensor([7]), n),
        per_sample_noise(3, 11, torch.tensor([7]), n),
        per_sample_noise(3, 10, torch.tensor([8]), n),
    ):
        assert not torch.equal(base, other)
    assert ((four >= 0) & (four < 1)).all()


def test_per_sample_noise_ignores_global_rng():
    torch.manual_seed(0)
    a = per_sample_noise(0, 0, torch.tensor([1, 2]), 16)
    torch.manual_seed(123)
    torch.rand(100)
    b = per_sample_noise(0, 0, torch.tensor([1, 2]), 16)
    assert torch.equal(a, b)


def test_mask_from_scores_masks_the_top_k():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.7], [3.0, 1.0, 2.0, 0.0]])
    assert mask_from_scores(scores, 2).tolist() == [[False, True, False, True], [True, False, True, False]]
    assert mask_from_scores(scores, 1, largest=False).tolist() == [
        [True, False, False, False],
        [False, False, False, True],
    ]
    ties = torch.zeros(1, 5)
    assert mask_from_scores(ties, 2).tolist() == [[True, True, False, False, False]]  # lower index first
