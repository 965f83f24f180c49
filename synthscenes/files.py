"""Deterministic encoding and writing of files, each returning the sha256 of the bytes it wrote.

Every file is encoded in memory first and written once, so its hash costs nothing extra and the manifest
never has to re-read the dataset. Encoders take no timestamps or other ambient state: the same array gives
the same bytes (for a given Pillow / libjpeg / zlib build).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from synthscenes.config import LAYOUTS, SPLITS

JPEG_QUALITY = 95


@dataclass(frozen=True)
class FileRecord:
    path: str  # relative to the dataset root, '/'-separated
    sha256: str
    split: str  # manifest split key, e.g. 'imagenet/train'


def item_rng(seed: int, layout: str, split: str, index: int) -> np.random.Generator:
    """The RNG of one item, a pure function of (seed, layout, split, index): items can be generated in any
    order, by any number of processes, and still come out the same."""
    return np.random.default_rng([seed, LAYOUTS.index(layout), SPLITS.index(split), index])


def png_bytes(array: np.ndarray, palette: list[int] | None = None) -> bytes:
    """PNG of an RGB ``[H, W, 3]`` or single-channel ``[H, W]`` uint8 array; with ``palette``, an indexed
    ('P' mode) PNG whose pixel values are the indices."""
    image = Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8))
    if palette is not None:
        image = image.convert("L") if image.mode != "L" else image
        image.putpalette(palette)  # turns an 'L' image into 'P' with the same index values
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    # 4:4:4 chroma: at 32-128 px, 4:2:0 subsampling would smear the colours of small objects.
    Image.fromarray(array).save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    return buffer.getvalue()


def write_file(root: Path, relpath: str, data: bytes, split: str) -> FileRecord:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return FileRecord(relpath, hashlib.sha256(data).hexdigest(), split)
