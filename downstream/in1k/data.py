"""Images and features for the IN-1K protocols: MAE's transforms, the mmengine dataset view, and the frozen
encoder's CLS features (extracted once per encoder and cached in memory).

Transforms (facebookresearch/mae@efb2a80):
* evaluation (``main_linprobe.py``, ``util/datasets.py``): Resize(img / crop_pct, bicubic) + CenterCrop(img);
  MAE's crop_pct is 224 / 256. SynthScenes images are drawn at the model's size, so micro/tiny use
  ``crop_pct=1.0`` (a crop would cut objects off the border);
* linear-probe training: RandomResizedCrop(img, bicubic) + horizontal flip;
* fine-tuning: timm's ``create_transform`` (RandAugment, random erasing, bicubic RandomResizedCrop, flip).
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torchvision.transforms as T
from torch.utils.data import DataLoader, Dataset

from downstream.datasets.imagenet import ImageFolderDataset
from downstream.progress import progress_bar

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def eval_transform(img_size: int, crop_pct: float = 224 / 256) -> Callable:
    """Resize(int(img_size / crop_pct), bicubic) + CenterCrop(img_size) + normalise, as MAE's evaluation."""
    return T.Compose(
        [
            T.Resize(int(img_size / crop_pct), interpolation=T.InterpolationMode.BICUBIC),
            T.CenterCrop(img_size),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def probe_train_transform(img_size: int, crop_scale: tuple[float, float] = (0.08, 1.0)) -> Callable:
    """MAE's linear-probe training view: RandomResizedCrop(bicubic) + flip + normalise."""
    return T.Compose(
        [
            T.RandomResizedCrop(img_size, scale=tuple(crop_scale), interpolation=T.InterpolationMode.BICUBIC),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def finetune_train_transform(img_size: int, recipe: dict[str, Any]) -> Callable:
    """MAE's fine-tuning view: timm's ``create_transform``, as ``util/datasets.py::build_transform``."""
    from timm.data import create_transform

    transform = create_transform(
        input_size=img_size,
        is_training=True,
        scale=tuple(recipe.get("crop_scale", (0.08, 1.0))),
        color_jitter=None,  # MAE passes None; RandAugment replaces colour jitter
        auto_augment=recipe.get("auto_augment") or None,
        interpolation="bicubic",
        re_prob=recipe.get("reprob", 0.0),
        re_mode=recipe.get("remode", "pixel"),
        re_count=recipe.get("recount", 1),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    )
    _fix_posterize(transform)
    return transform


def _posterize(img, bits_to_keep: int, **_: Any):
    """timm's ``posterize`` with the Pillow < 11 meaning of 0 bits (a black image).

    ``rand-m9-mstd0.5-inc1`` uses PosterizeIncreasing, which asks for 0 bits at the top of the magnitude
    range (magnitude 9 + noise of std 0.5 reaches it); Pillow 13 (pinned here) raises on 0 bits, which timm
    1.0.31 does not guard, so a fine-tune run would crash at a random step.
    """
    from PIL import Image, ImageOps

    if bits_to_keep >= 8:
        return img
    if bits_to_keep <= 0:
        return Image.new(img.mode, img.size)
    return ImageOps.posterize(img, bits_to_keep)


def _fix_posterize(transform: Any) -> None:
    """Swap ``_posterize`` into the RandAugment ops of one transform (this object only, no global patch)."""
    from timm.data import auto_augment

    for t in getattr(transform, "transforms", []):
        for op in getattr(t, "ops", []):
            if getattr(op, "aug_fn", None) is auto_augment.posterize:
                op.aug_fn = _posterize


class MMClassification(Dataset):
    """A ``(image, label, index)`` dataset as mmengine batches: ``dict(inputs=image, data_samples=label)``."""

    def __init__(self, base: Dataset) -> None:
        self.base = base
        self.metainfo = dict(classes=getattr(base, "classes", None))

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, label, _ = self.base[index]
        return dict(inputs=image, data_samples=torch.tensor(label, dtype=torch.long))


# ----------------------------------------------------------------------------------------------------------
# Frozen-encoder features
# ----------------------------------------------------------------------------------------------------------
#: the frozen-encoder features the linear probe and the k-NN read (budget key ``pool``)
POOLS = ("cls", "avg")


def encode_features(
    vit: torch.nn.Module, images: torch.Tensor, pool: str = "cls", chunk: int = 0
) -> torch.Tensor:
    """The probe feature [B, D] of a frozen encoder.

    ``cls``: the CLS token after the final norm, as MAE's linear probe (``--cls_token``) and DINO's k-NN.
    ``avg``: the mean of the last block's patch tokens, layer-normalised without affine, as MAE's
    ``--global_pool`` probe (its final norm is removed and ``fc_norm`` stays at its initialisation, frozen).
    MAE's loss never reaches the CLS token; at small budgets the pooled patch tokens are the feature that
    pretraining shaped.

    ``chunk`` > 0 runs the encoder on slices of the batch (a probe batch of 16384 at 224 px does not fit
    one forward); the result is the same. Gradient mode is the caller's: the probe's augmented views run with
    gradients enabled, so the encoder's freezing (``requires_grad=False``, which builds no graph) is the one
    thing keeping it out of training, as in MAE's ``main_linprobe.py``, and a test can show it.
    """
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
    parts = images.split(chunk) if chunk > 0 else (images,)
    return torch.cat([_feature(vit, x, pool) for x in parts])


def _feature(vit: torch.nn.Module, x: torch.Tensor, pool: str) -> torch.Tensor:
    if pool == "cls":
        return vit.forward_features(x)[:, 0]
    tokens = vit.blocks(vit.input_tokens(x))[:, 1:]  # [B, N, D], before the final norm
    return torch.nn.functional.layer_norm(tokens.mean(dim=1), tokens.shape[-1:], eps=1e-6)


def extract_features(
    vit: torch.nn.Module,
    dataset: Dataset,
    batch_size: int = 256,
    num_workers: int = 0,
    desc: str | None = None,
    progress: bool = True,
    pool: str = "cls",
) -> tuple[torch.Tensor, torch.Tensor]:
    """(features [N, D] float32 on CPU, labels [N]) of a whole dataset in order, the encoder in eval mode."""
    vit.eval()
    device = next(vit.parameters()).device
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    feats, labels = [], []
    for images, target, _ in progress_bar(loader, desc=desc, unit="batch", enabled=progress):
        with torch.no_grad():
            feats.append(encode_features(vit, images.to(device), pool).float().cpu())
        labels.append(torch.as_tensor(target))
    return torch.cat(feats), torch.cat(labels).long()


class FeatureCache:
    """Centre-crop CLS features of one (encoder, split, view), kept in memory across protocol calls.

    The linear probe on cached features (3 seeds) and the k-NN read the same features, so each split is
    encoded once per encoder. Keyed on the sha256 of the tensors as loaded (``LoadReport.sha256``), the
    split's folder and the view; ``max_entries`` bounds the memory (ImageNet-1K at ViT-B is 3.9 GB a split).
    """

    def __init__(self, max_entries: int = 4) -> None:
        self.max_entries = max_entries
        self._store: OrderedDict[tuple, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()

    def get_or_extract(
        self,
        vit: torch.nn.Module,
        encoder_sha256: str,
        data_root: str | os.PathLike,
        split: str,
        img_size: int,
        crop_pct: float,
        batch_size: int,
        num_workers: int = 0,
        progress: bool = True,
        pool: str = "cls",
    ) -> tuple[torch.Tensor, torch.Tensor, bool, float]:
        """(features, labels, cache hit, seconds spent extracting) of ``encode_features(..., pool)``."""
        key = (encoder_sha256, str(Path(data_root).resolve()), split, int(img_size), float(crop_pct), pool)
        if key in self._store:
            self._store.move_to_end(key)
            return (*self._store[key], True, 0.0)
        start = time.perf_counter()
        dataset = ImageFolderDataset(data_root, split=split, transform=eval_transform(img_size, crop_pct))
        feats, labels = extract_features(
            vit, dataset, batch_size, num_workers, desc=f"features {split}", progress=progress, pool=pool
        )
        self._store[key] = (feats, labels)
        while len(self._store) > self.max_entries:
            self._store.popitem(last=False)
        return feats, labels, False, time.perf_counter() - start

    def clear(self) -> None:
        self._store.clear()


#: The process-wide cache the protocol entry points share.
FEATURES = FeatureCache()
