"""The class-folder reader used by pretraining and the IN-1K protocols (ImageNet or SynthScenes), and the
captions CSV SynthScenes writes next to it.

Classes are the sorted folder names, as torchvision's ImageFolder numbers them, so a class index means
the same class in every run that reads the same tree.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from downstream.datasets.errors import IMAGENET_LAYOUT, DatasetError
from downstream.datasets.images import IMAGE_EXTENSIONS, open_rgb, readable_split

logger = logging.getLogger(__name__)


def list_class_folders(split_root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """(classes, samples) of one split folder; raises DatasetError on a missing folder or an empty class."""
    if not split_root.is_dir():
        raise DatasetError.at(split_root, "missing folder", IMAGENET_LAYOUT)
    classes = sorted(entry.name for entry in split_root.iterdir() if entry.is_dir())
    if not classes:
        raise DatasetError.at(split_root, "no class folders", IMAGENET_LAYOUT)
    samples = []
    for label, name in enumerate(classes):
        files = sorted(
            entry
            for entry in (split_root / name).iterdir()
            if entry.is_file() and entry.suffix.lower() in IMAGE_EXTENSIONS
        )
        if not files:
            raise DatasetError.at(
                split_root / name, "empty class (no .JPEG/.jpg/.png images)", IMAGENET_LAYOUT
            )
        samples += [(path, label) for path in files]
    return classes, samples


class ImageFolderDataset(Dataset):
    """``root/<split>/<class>/<image>`` as a torch Dataset of ``(image, label, index)``.

    ``image`` is ``transform(PIL RGB image)`` (the PIL image itself without a transform); ``index`` is the
    sample's position, which the harness uses to seed per-sample randomness (masks, augmentations).

    A corrupt image raises DatasetError naming the file when it is read. With ``skip_corrupt=True`` every
    image is decoded once here and the unreadable ones are left out; ``skipped`` lists them and
    ``num_skipped`` is what a run records in its provenance.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        transform: Callable[[Any], Any] | None = None,
        skip_corrupt: bool = False,
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.transform = transform
        self.classes, samples = list_class_folders(self.root / split)
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}
        self.skipped: list[Path] = []
        if skip_corrupt:
            labels = dict(samples)
            good, self.skipped = readable_split(labels, lambda p: open_rgb(p, IMAGENET_LAYOUT))
            samples = [(path, labels[path]) for path in good]
            if self.skipped:
                logger.warning(
                    "%s: skipped %d unreadable images (skip_corrupt)", self.root / split, len(self.skipped)
                )
        self.samples: list[tuple[Path, int]] = samples
        self.targets: list[int] = [label for _, label in samples]

    @property
    def num_skipped(self) -> int:
        return len(self.skipped)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int, int]:
        path, label = self.samples[index]
        image = open_rgb(path, IMAGENET_LAYOUT)
        return (self.transform(image) if self.transform is not None else image), label, index


def class_folder_splits(
    root: str | os.PathLike, splits: Sequence[str] = ("train", "val")
) -> dict[str, list[tuple[Path, int]]]:
    """The samples of every split, with the layout checked: every split present, non-empty classes, the same
    classes in every split. Raises DatasetError naming the folder."""
    root = Path(root)
    by_split, reference = {}, None
    for split in splits:
        classes, samples = list_class_folders(root / split)
        if reference is not None and classes != reference[1]:
            raise DatasetError.at(
                root / split,
                f"class folders differ from {reference[0]}'s ({len(classes)} vs {len(reference[1])})",
                IMAGENET_LAYOUT,
            )
        reference = reference or (split, classes)
        by_split[split] = samples
    return by_split


def check_imagenet_root(
    root: str | os.PathLike, splits: Sequence[str] = ("train", "val"), full: bool = False
) -> dict[str, int]:
    """Check the class-folder tree before a run (``class_folder_splits``); with ``full``, decode every image.
    Returns the number of images per split."""
    by_split = class_folder_splits(root, splits)
    if full:
        for samples in by_split.values():
            for path, _ in samples:
                open_rgb(path, IMAGENET_LAYOUT)
    return {split: len(samples) for split, samples in by_split.items()}


def read_captions(root: str | os.PathLike, split: str = "train") -> list[tuple[Path, str]]:
    """SynthScenes' ``root/captions_<split>.csv`` as (image path, caption) pairs, every image checked to
    exist (captions train the tiny CLIP teacher)."""
    path = Path(root) / f"captions_{split}.csv"
    layout = "<root>/captions_{train,val}.csv with columns filepath,caption next to the class folders"
    if not path.is_file():
        raise DatasetError.at(path, "missing captions file", layout)
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"filepath", "caption"} <= set(reader.fieldnames):
            raise DatasetError.at(path, f"header {reader.fieldnames} lacks filepath,caption", layout)
        pairs = [(Path(root) / row["filepath"], row["caption"]) for row in reader]
    for image, _ in pairs:
        if not image.is_file():
            raise DatasetError.at(image, f"listed in {path.name} but missing", layout)
    return pairs
