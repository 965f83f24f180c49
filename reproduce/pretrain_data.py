"""The pretraining data path: keyed augmentation and a resumable, rank-consistent infinite sampler.

Two readers, one sequence of random draws:
- ``PretrainDataset`` reads image files (real data): PIL decoding, RandomResizedCrop and flip per image.
- ``DecodedImages`` + ``CropBatch`` (the small budgets, ``pretrain.in_memory``): the split is decoded once
  into a uint8 array (cached next to the dataset, keyed on its manifest), and each batch's crops and flips are
  one bicubic ``grid_sample`` on the stacked images. The crop boxes and flips are drawn exactly as the file
  reader draws them, so only the resampling kernel differs (torch's bicubic, a = -0.75, against PIL's).

Two properties the harness relies on:
- **Bitwise resume.** Nothing random depends on hidden RNG state. The sampler's order is a function of
  (seed, epoch); each image's crop and flip are a function of (seed, epoch, dataset index); the mask noise
  is a function of (seed, global step, dataset index) (``methods.masking.per_sample_noise``). A resumed
  run therefore sees exactly the batches, crops and masks that an uninterrupted run would see. On resume,
  the sampler jumps straight to the right position. mmengine's ``IterBasedTrainLoop`` would instead load
  and discard every batch already trained on.
- **World-size invariance.** The global batch at step s is the same set of images whatever the number of
  processes. Rank r takes every world-size-th element of it, so N processes with batch B/N train on exactly
  what one process with batch B trains on.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from mmengine.dist import get_dist_info
from mmengine.registry import DATA_SAMPLERS
from PIL import Image
from torch.utils.data import Dataset, Sampler

from methods.atomic import atomic_write

# ImageNet statistics, as the official MAE pretraining transform uses.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# First element of every key, so that the sampler's and the augmentation's streams never coincide.
ORDER_STREAM, AUGMENT_STREAM = 0, 1


def keyed_generator(*key: int) -> torch.Generator:
    """A torch Generator whose state is a function of the key alone (SeedSequence mixes the non-negative
    integers of the key)."""
    seed = int(np.random.SeedSequence([int(k) for k in key]).generate_state(1, dtype=np.uint64)[0])
    return torch.Generator().manual_seed(seed & 0x7FFF_FFFF_FFFF_FFFF)


def random_resized_crop_params(
    width: int, height: int, scale: tuple[float, float], ratio: tuple[float, float], g: torch.Generator
) -> tuple[int, int, int, int]:
    """torchvision's RandomResizedCrop.get_params (10 tries, then a centre crop), drawing from ``g``."""
    area = height * width
    log_ratio = torch.log(torch.tensor(ratio))
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(scale[0], scale[1], generator=g).item()
        aspect = math.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=g).item())
        w = round(math.sqrt(target_area * aspect))
        h = round(math.sqrt(target_area / aspect))
        if 0 < w <= width and 0 < h <= height:
            i = int(torch.randint(0, height - h + 1, (1,), generator=g).item())
            j = int(torch.randint(0, width - w + 1, (1,), generator=g).item())
            return i, j, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, round(width / min(ratio))
    elif in_ratio > max(ratio):
        h, w = height, round(height * max(ratio))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


class PretrainDataset(Dataset):
    """MAE's pretraining view of an image dataset: RandomResizedCrop(scale=crop_scale, bicubic), horizontal
    flip, ImageNet normalisation; random choices keyed on (seed, epoch, index).

    ``base[i]`` must return ``(image, label, index)`` with a PIL image (the class-folder reader of
    ``downstream.datasets``). Items are requested as ``(epoch, index)`` pairs by ``KeyedInfiniteSampler``
    and returned as mmengine's ``dict(inputs=[3, H, W] float tensor, data_samples=index)``.
    """

    def __init__(
        self, base: Dataset, img_size: int, crop_scale=(0.2, 1.0), hflip: bool = True, seed: int = 0
    ) -> None:
        self.base = base
        self.img_size = int(img_size)
        self.crop_scale = tuple(crop_scale)
        self.hflip = hflip
        self.seed = int(seed)
        self.metainfo = getattr(base, "metainfo", {})

    def __len__(self) -> int:
        return len(self.base)

    def transform(self, image: Image.Image, epoch: int, index: int) -> torch.Tensor:
        image = image.convert("RGB")
        (i, j, h, w), flip = crop_and_flip(
            self.seed, epoch, index, image.width, image.height, self.crop_scale, self.hflip
        )
        image = TF.resized_crop(
            image, i, j, h, w, [self.img_size, self.img_size], interpolation=TF.InterpolationMode.BICUBIC
        )
        if flip:
            image = TF.horizontal_flip(image)
        x = TF.to_dtype(TF.pil_to_tensor(image), torch.float32, scale=True)
        return TF.normalize(x, IMAGENET_MEAN, IMAGENET_STD)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        epoch, index = key
        image, _label, sample_id = self.base[index]
        return {"inputs": self.transform(image, epoch, index), "data_samples": int(sample_id)}


def crop_and_flip(seed: int, epoch: int, index: int, width: int, height: int, crop_scale, hflip: bool):
    """The random choices of one view, drawn from the key (seed, epoch, index): the crop box (i, j, h, w) of
    RandomResizedCrop (aspect 3/4-4/3) and whether to flip, in the order ``PretrainDataset.transform`` draws
    them."""
    g = keyed_generator(AUGMENT_STREAM, seed, epoch, index)
    box = random_resized_crop_params(width, height, tuple(crop_scale), (3 / 4, 4 / 3), g)
    flip = hflip and torch.rand(1, generator=g).item() < 0.5
    return box, flip


class DecodedImages:
    """Every image of a class-folder split, decoded once: ``array`` uint8 [N, H, W, 3], ``labels`` [N].

    The array is written once as ``<split>-<key>.u8.npy`` in ``<root>/.decoded/`` (atomically) and read back
    memory-mapped; ``key`` identifies the dataset's content (its manifest hash), so a changed dataset is
    decoded anew and a stale array is never read. Every image must have the same size (SynthScenes draws
    them at the model's size); real data keeps the file reader.
    """

    def __init__(self, base, key: str) -> None:
        root = Path(base.root)
        name = f"{base.split}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.u8.npy"
        path = root / ".decoded" / name
        if not path.is_file():
            array = np.stack([np.asarray(base[i][0]) for i in range(len(base))])
            atomic_write(path, lambda f: np.save(f, array))
        self.array = torch.from_numpy(np.load(path, mmap_mode="r").copy())  # [N, H, W, 3] uint8
        self.labels = torch.as_tensor(base.targets)
        self.metainfo = getattr(base, "metainfo", {})
        if self.array.shape[0] != len(base) or self.array.shape[-1] != 3:
            raise ValueError(f"{path}: holds {tuple(self.array.shape)}, not {len(base)} RGB images")

    def __len__(self) -> int:
        return len(self.array)


class KeyedViews(Dataset):
    """The in-memory counterpart of ``PretrainDataset``: item ``(epoch, index)`` is the view's recipe (the
    image index, its crop box and flip), drawn from the same key; ``CropBatch`` renders a batch of them."""

    def __init__(
        self, images: DecodedImages, crop_scale=(0.2, 1.0), hflip: bool = True, seed: int = 0
    ) -> None:
        self.images = images
        self.crop_scale, self.hflip, self.seed = tuple(crop_scale), hflip, int(seed)
        self.metainfo = images.metainfo

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: tuple[int, int]) -> tuple[int, tuple[int, int, int, int], bool]:
        epoch, index = key
        _, height, width, _ = self.images.array.shape
        box, flip = crop_and_flip(self.seed, epoch, index, width, height, self.crop_scale, self.hflip)
        return index, box, flip


class CropBatch:
    """Collate for ``KeyedViews``: the batch's resized crops and flips as one bicubic ``grid_sample``, scaled
    to [0, 1] (clamped: bicubic overshoots, as PIL clips to uint8) and ImageNet-normalised. Returns mmengine's
    ``dict(inputs=[B, 3, S, S] float, data_samples=[B] dataset indices)``."""

    def __init__(self, images: DecodedImages, img_size: int) -> None:
        self.images, self.size = images, int(img_size)
        self.mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def __call__(
        self, views: Sequence[tuple[int, tuple[int, int, int, int], bool]]
    ) -> dict[str, torch.Tensor]:
        ids = torch.tensor([v[0] for v in views])
        pixels = self.images.array[ids].permute(0, 3, 1, 2).float().div_(255)  # [B, 3, H, W]
        _, _, height, width = pixels.shape
        # output pixel centre u (normalised o in [-1, 1]) reads input x = j + (u + 0.5) w / S - 0.5, i.e.
        # normalised (w / W) o + (2 j + w) / W - 1, as interpolate(align_corners=False) on the crop; a flip
        # negates the scale
        boxes = torch.tensor([v[1] for v in views], dtype=torch.float64)  # [B, 4]: i, j, h, w
        sign = torch.tensor([-1.0 if v[2] else 1.0 for v in views], dtype=torch.float64)
        i, j, h, w = boxes.unbind(1)
        zero = torch.zeros_like(i)
        theta = torch.stack(
            [
                torch.stack([sign * w / width, zero, (2 * j + w) / width - 1], dim=1),
                torch.stack([zero, h / height, (2 * i + h) / height - 1], dim=1),
            ],
            dim=1,
        )
        grid = F.affine_grid(theta.float(), [len(views), 3, self.size, self.size], align_corners=False)
        out = F.grid_sample(pixels, grid, mode="bicubic", padding_mode="border", align_corners=False)
        return {"inputs": (out.clamp_(0, 1) - self.mean) / self.std, "data_samples": ids}


@DATA_SAMPLERS.register_module()
class KeyedInfiniteSampler(Sampler):
    """Yields ``(epoch, index)`` forever: a permutation per epoch from (seed, epoch), truncated so every step
    has a full global batch, and split across ranks by interleaving within each global batch.

    ``set_start_step(s)`` makes the next iteration begin at global step ``s`` without touching the data.
    """

    def __init__(self, dataset: Dataset, batch_size: int, seed: int = 0, shuffle: bool = True) -> None:
        rank, world_size = get_dist_info()
        self.num_samples = len(dataset)
        self.batch_size = int(batch_size)  # per process
        self.rank, self.world_size = rank, world_size
        self.global_batch = self.batch_size * world_size
        self.steps_per_epoch = self.num_samples // self.global_batch
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"the dataset has {self.num_samples} images, fewer than one global batch "
                f"({self.global_batch})"
            )
        self.seed = int(seed)
        self.shuffle = shuffle
        self.start_step = 0

    def set_start_step(self, step: int) -> None:
        self.start_step = int(step)

    def epoch_order(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.num_samples)
        return torch.randperm(self.num_samples, generator=keyed_generator(ORDER_STREAM, self.seed, epoch))

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, step_in_epoch = divmod(self.start_step, self.steps_per_epoch)
        while True:
            order = self.epoch_order(epoch)[: self.steps_per_epoch * self.global_batch]
            # [steps, world, batch]: element (s, r, b) is sample r + b * world of global batch s.
            mine = order.view(self.steps_per_epoch, self.batch_size, self.world_size)[:, :, self.rank]
            for step in range(step_in_epoch, self.steps_per_epoch):
                for index in mine[step].tolist():
                    yield epoch, index
            epoch, step_in_epoch = epoch + 1, 0

    def __len__(self) -> int:  # one epoch's worth, for progress displays
        return self.steps_per_epoch * self.batch_size
