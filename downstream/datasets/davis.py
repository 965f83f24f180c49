"""The DAVIS-2017 reader (semi-supervised task) and root check; the writer of indexed prediction PNGs.

Object ids come from the first frame's annotation, as the DAVIS toolkit counts them: a sequence with ids
1..K in its first frame has K objects, and no later frame may hold an id above K (255 = void is allowed).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from downstream.datasets.errors import DAVIS_LAYOUT, DatasetError
from downstream.datasets.images import open_array, open_rgb

logger = logging.getLogger(__name__)

VOID = 255


@dataclass(frozen=True)
class DavisSequence:
    name: str
    frame_paths: tuple[Path, ...]
    mask_paths: tuple[Path, ...]  # the ground truth of every frame (DAVIS trainval annotates all frames)
    num_objects: int  # K: ids 1..K, all present in the first frame

    def __len__(self) -> int:
        return len(self.frame_paths)

    def frames(self) -> np.ndarray:
        """``[T, H, W, 3]`` uint8 RGB frames."""
        return np.stack([np.asarray(open_rgb(path, DAVIS_LAYOUT)) for path in self.frame_paths])

    def masks(self) -> np.ndarray:
        """``[T, H, W]`` uint8 object ids (0 = background, 1..K, 255 = void), checked frame by frame."""
        return np.stack([read_mask(path, self.num_objects) for path in self.mask_paths])

    def first_mask(self) -> np.ndarray:
        return read_mask(self.mask_paths[0], self.num_objects)


def read_mask(path: Path, num_objects: int | None = None) -> np.ndarray:
    """One indexed annotation PNG as ids; with ``num_objects``, any id above it is an error."""
    ids, _ = open_array(path, DAVIS_LAYOUT, mode="P")
    if num_objects is not None:
        unknown = sorted(int(v) for v in np.unique(ids) if v > num_objects and v != VOID)
        if unknown:
            raise DatasetError.at(
                path, f"unknown object id(s) {unknown}: the first frame has 1..{num_objects}", DAVIS_LAYOUT
            )
    return ids


def _first_frame_objects(path: Path) -> int:
    ids = read_mask(path)
    present = sorted(int(v) for v in np.unique(ids) if v not in (0, VOID))
    if not present:
        raise DatasetError.at(path, "first-frame annotation holds no object", DAVIS_LAYOUT)
    if present != list(range(1, present[-1] + 1)):
        raise DatasetError.at(path, f"first-frame ids {present} are not 1..K", DAVIS_LAYOUT)
    return present[-1]


def _load_sequence(root: Path, name: str, resolution: str) -> DavisSequence:
    frame_dir, mask_dir = root / "JPEGImages" / resolution / name, root / "Annotations" / resolution / name
    for folder in (frame_dir, mask_dir):
        if not folder.is_dir():
            raise DatasetError.at(folder, "missing sequence folder", DAVIS_LAYOUT)
    frames = tuple(sorted(frame_dir.glob("*.jpg")))
    if not frames:
        raise DatasetError.at(frame_dir, "no .jpg frames", DAVIS_LAYOUT)
    masks = tuple(mask_dir / f"{path.stem}.png" for path in frames)
    for mask in masks:
        if not mask.is_file():
            raise DatasetError.at(mask, "annotation missing for its frame", DAVIS_LAYOUT)
    return DavisSequence(name, frames, masks, _first_frame_objects(masks[0]))


def read_sequence_list(root: Path, split: str) -> list[str]:
    path = root / "ImageSets" / "2017" / f"{split}.txt"
    if not path.is_file():
        raise DatasetError.at(path, "missing sequence list", DAVIS_LAYOUT)
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise DatasetError.at(path, "empty sequence list", DAVIS_LAYOUT)
    return names


class DavisDataset:
    """The sequences of one DAVIS-2017 split, as ``DavisSequence`` records (frames and masks load lazily).

    Construction checks the layout: the split list, every sequence's frame and annotation folders, an
    annotation per frame, and first-frame ids 1..K. Unreadable frames raise DatasetError when read; with
    ``skip_corrupt=True`` every frame and mask is decoded once here and a sequence with any unreadable file
    is left out (a video with a hole is not a valid sequence): ``skipped`` lists the unreadable files and
    ``skipped_sequences`` the sequences dropped."""

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "val",
        resolution: str = "480p",
        skip_corrupt: bool = False,
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.skipped: list[Path] = []
        self.skipped_sequences: list[str] = []
        sequences = [
            _load_sequence(self.root, name, resolution) for name in read_sequence_list(self.root, split)
        ]
        if skip_corrupt:
            kept = []
            for seq in sequences:
                bad = _unreadable(seq)
                if bad:
                    self.skipped += bad
                    self.skipped_sequences.append(seq.name)
                else:
                    kept.append(seq)
            if self.skipped:
                logger.warning(
                    "%s: skipped %d sequences with %d unreadable files (skip_corrupt)",
                    self.root,
                    len(self.skipped_sequences),
                    len(self.skipped),
                )
            sequences = kept
        self.sequences: list[DavisSequence] = sequences

    @property
    def num_skipped(self) -> int:
        return len(self.skipped)

    @property
    def names(self) -> list[str]:
        return [seq.name for seq in self.sequences]

    def palette(self) -> list[int]:
        """The palette of the ground-truth PNGs, to write predictions the toolkit reads the same way."""
        with Image.open(self.sequences[0].mask_paths[0]) as image:
            return image.getpalette()

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> DavisSequence:
        return self.sequences[index]


def _unreadable(seq: DavisSequence) -> list[Path]:
    bad = []
    for frame, mask in zip(seq.frame_paths, seq.mask_paths):
        for path, read in (
            (frame, lambda p: open_rgb(p, DAVIS_LAYOUT)),
            (mask, lambda p: read_mask(p, seq.num_objects)),
        ):
            try:
                read(path)
            except DatasetError:
                bad.append(path)
    return bad


def check_davis_root(
    root: str | os.PathLike, split: str = "val", resolution: str = "480p", full: bool = False
) -> int:
    """Check a DAVIS-2017 root before a run; with ``full``, decode every frame and check every mask's ids.
    Returns the number of frames."""
    dataset = DavisDataset(root, split, resolution)
    if full:
        for seq in dataset.sequences:
            seq.frames()
            seq.masks()
    return sum(len(seq) for seq in dataset.sequences)


def write_indexed_png(path: str | os.PathLike, ids: np.ndarray, palette: list[int]) -> None:
    """Save a ``[H, W]`` id map as an indexed PNG (what the DAVIS toolkit reads for predictions)."""
    image = Image.fromarray(np.ascontiguousarray(ids, dtype=np.uint8))  # 2-D uint8 -> "L"
    image.putpalette(palette)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
