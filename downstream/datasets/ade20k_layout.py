"""The ADE20K mmseg layout, checked without importing mmseg: label maps, image/label pairs, the root.

Label files hold 0 = background/"other" and k + 1 = class k (``reduce_zero_label=True``, as ADE20K).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from downstream.datasets.errors import ADE20K_LAYOUT, DatasetError
from downstream.datasets.images import open_array, open_rgb


def check_label_map(path: str | Path, num_classes: int, reduce_zero_label: bool = True) -> np.ndarray:
    """Decode one label PNG and check every value names a class (or 255, ignore). Returns the raw map."""
    labels, _ = open_array(path, ADE20K_LAYOUT)
    if labels.ndim != 2:
        raise DatasetError.at(path, f"label map has shape {labels.shape}, not [H, W]", ADE20K_LAYOUT)
    top = num_classes if reduce_zero_label else num_classes - 1  # largest valid value on disk
    # uint8 maps (every ADE20K-layout PNG): a histogram is ~20x faster than np.unique on a 512 px map
    present = (
        np.flatnonzero(np.bincount(labels.ravel(), minlength=256))
        if labels.dtype == np.uint8
        else np.unique(labels)
    )
    unknown = sorted(int(v) for v in present if v > top and v != 255)
    if unknown:
        raise DatasetError.at(
            path, f"unknown label(s) {unknown}: valid are 0..{top} (and 255)", ADE20K_LAYOUT
        )
    return labels


def check_ade20k_root(
    root: str | Path,
    split: str = "training",
    num_classes: int = 150,
    reduce_zero_label: bool = True,
    full: bool = False,
) -> int:
    """Check ``root/images/<split>`` and ``root/annotations/<split>`` before a run: both present, a label
    PNG for every image and an image for every label; with ``full``, decode every image and check every
    label map's values. Returns the number of pairs."""
    root = Path(root)
    images, labels = image_label_pairs(root / "images" / split, root / "annotations" / split)
    if full:
        for image, label in zip(images, labels):
            open_rgb(image, ADE20K_LAYOUT)
            check_label_map(label, num_classes, reduce_zero_label)
    return len(images)


def image_label_pairs(
    image_dir: Path, label_dir: Path, img_suffix: str = ".jpg", seg_suffix: str = ".png"
) -> tuple[list, list]:
    for folder in (image_dir, label_dir):
        if not folder.is_dir():
            raise DatasetError.at(folder, "missing folder", ADE20K_LAYOUT)
    images = sorted(p for p in image_dir.rglob(f"*{img_suffix}") if p.is_file())
    if not images:
        raise DatasetError.at(image_dir, f"no {img_suffix} images", ADE20K_LAYOUT)
    labels = [label_dir / p.relative_to(image_dir).with_suffix(seg_suffix) for p in images]
    for label in labels:
        if not label.is_file():
            raise DatasetError.at(label, "label map missing for its image", ADE20K_LAYOUT)
    image_stems = {p.relative_to(image_dir).with_suffix("") for p in images}
    for label in label_dir.rglob(f"*{seg_suffix}"):
        if label.relative_to(label_dir).with_suffix("") not in image_stems:
            raise DatasetError.at(label, "label map without an image", ADE20K_LAYOUT)
    return images, labels
