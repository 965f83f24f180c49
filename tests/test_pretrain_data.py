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


# ---- the in-memory path (pretrain.in_memory: decoded array + batched crops) -----------------------------
@pytest.fixture(scope="module")
def golden_images(golden_setting):
    from downstream.datasets.imagenet import ImageFolderDataset
    from reproduce.pretrain_data import DecodedImages

    base = ImageFolderDataset(golden_setting.data.imagenet, "train")
    return base, DecodedImages(base, golden_setting.data.manifest_hash), golden_setting.data.manifest_hash


def test_decoded_images_are_the_files_and_are_decoded_once(golden_images, monkeypatch):
    from reproduce.pretrain_data import DecodedImages

    base, images, key = golden_images
    for i in (0, 7, len(base) - 1):
        assert np.array_equal(images.array[i].numpy(), np.asarray(base[i][0]))
    assert images.labels.tolist() == base.targets
    # a second reader with the same dataset key maps the cached array: no image is opened again
    with monkeypatch.context() as m:
        m.setattr(type(base), "__getitem__", lambda *a: pytest.fail("decoded again"))
        assert torch.equal(DecodedImages(base, key).array, images.array)
    # another dataset key (another manifest) is decoded anew, into its own file
    DecodedImages(base, key + "-changed")
    assert len(list((base.root / ".decoded").glob(f"{base.split}-*.u8.npy"))) == 2


def test_batched_crops_draw_the_file_readers_boxes_and_render_them(golden_images):
    """Each view's crop box and flip are the file reader's (one keyed draw, the same order); the rendering
    differs only in the bicubic kernel (torch's a = -0.75 against PIL's -0.5)."""
    from reproduce.pretrain_data import IMAGENET_MEAN, IMAGENET_STD, CropBatch, KeyedViews

    base, images, _ = golden_images
    files = PretrainDataset(base, 32, (0.2, 1.0), True, seed=5)
    views = KeyedViews(images, (0.2, 1.0), True, seed=5)
    keys = [(e, i) for e in range(2) for i in range(len(base))]
    batch = CropBatch(images, 32)([views[k] for k in keys])
    assert batch["data_samples"].tolist() == [i for _, i in keys]
    reference = torch.stack([files[k]["inputs"] for k in keys])
    assert batch["inputs"].shape == reference.shape
    per_view = (batch["inputs"] - reference).abs().mean(dim=(1, 2, 3))
    assert per_view.max() < 0.1, per_view.max()  # normalised units: a wrong box or flip gives ~0.5-1
    # the whole image, unflipped, is the image itself (sampled at its own pixel centres)
    (whole,) = CropBatch(images, 32)([(3, (0, 0, 32, 32), False)])["inputs"]
    pixels = images.array[3].permute(2, 0, 1).float() / 255
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    assert torch.allclose(whole, (pixels - mean) / std, atol=1e-6)


def test_a_flipped_view_is_the_mirror_of_the_unflipped_one(golden_images):
    from reproduce.pretrain_data import CropBatch

    _, images, _ = golden_images
    box = (4, 6, 20, 18)
    plain, flipped = CropBatch(images, 32)([(2, box, False), (2, box, True)])["inputs"]
    assert torch.allclose(flipped, plain.flip(-1), atol=1e-6)
