"""Keyed augmentation and the resumable, world-size-invariant sampler."""

from __future__ import annotations

import itertools
from unittest import mock

import numpy as np
import pytest
import torch
from PIL import Image

from reproduce.pretrain_data import KeyedInfiniteSampler, PretrainDataset


class Images(torch.utils.data.Dataset):
    def __init__(self, n=40, size=48):
        rng = np.random.default_rng(0)
        self.images = [
            Image.fromarray(rng.integers(0, 255, (size, size + 8, 3), dtype=np.uint8)) for _ in range(n)
        ]

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], i % 3, i


def sampler(world_size=1, rank=0, batch=8, n=40, seed=3):
    with mock.patch("reproduce.pretrain_data.get_dist_info", return_value=(rank, world_size)):
        return KeyedInfiniteSampler(Images(n), batch_size=batch, seed=seed)


def take(s, n):
    return list(itertools.islice(iter(s), n))


def test_global_batches_do_not_depend_on_the_number_of_processes():
    one = take(sampler(1, 0, batch=8), 8 * 12)  # 12 steps cross epoch boundaries (5 steps per epoch)
    ranks = [take(sampler(2, r, batch=4), 4 * 12) for r in (0, 1)]
    for step in range(12):
        global_batch = set(one[step * 8 : (step + 1) * 8])
        split = set(ranks[0][step * 4 : (step + 1) * 4]) | set(ranks[1][step * 4 : (step + 1) * 4])
        assert split == global_batch


def test_epochs_are_permutations_without_repeats_and_differ():
    s = sampler(batch=8, n=40)
    first, second = take(s, 40), take(s, 80)[40:]
    assert {e for e, _ in first} == {0} and {e for e, _ in second} == {1}
    assert sorted(i for _, i in first) == list(range(40))
    assert [i for _, i in first] != [i for _, i in second]


def test_start_step_resumes_exactly_where_a_full_run_would_be():
    full = take(sampler(), 8 * 9)
    s = sampler()
    s.set_start_step(6)
    assert take(s, 8 * 3) == full[8 * 6 :]


def test_dataset_smaller_than_a_batch_is_refused():
    with pytest.raises(ValueError, match="fewer than one global batch"):
        sampler(n=4, batch=8)


def test_augmentation_is_a_function_of_seed_epoch_and_index():
    data = PretrainDataset(Images(4), img_size=16, seed=0)
    a, b = data[(0, 2)], data[(0, 2)]
    assert torch.equal(a["inputs"], b["inputs"]) and a["data_samples"] == 2
    assert a["inputs"].shape == (3, 16, 16)
    torch.manual_seed(123)  # global RNG state must not matter
    assert torch.equal(data[(0, 2)]["inputs"], a["inputs"])
    assert not torch.equal(data[(1, 2)]["inputs"], a["inputs"])  # next epoch: another crop
    assert not torch.equal(PretrainDataset(Images(4), 16, seed=1)[(0, 2)]["inputs"], a["inputs"])
