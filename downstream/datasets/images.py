"""Decoding images with errors that name the file."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

from downstream.datasets.errors import DatasetError

# Real ImageNet ships .JPEG; copies and subsets often use .jpg or .png. Compared case-insensitively.
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpeg", ".jpg", ".png")


@contextmanager
def _decoding(path: str | os.PathLike, layout: str) -> Iterator[Image.Image]:
    """``Image.open(path)``; a missing, corrupt or unreadable file (while opening or decoding it inside the
    block) is a ``DatasetError`` naming the file."""
    try:
        with Image.open(path) as image:
            yield image
    except FileNotFoundError:
        raise DatasetError.at(path, "file not found", layout) from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DatasetError.at(
            path, f"corrupt or unreadable image ({type(exc).__name__}: {exc})", layout
        ) from None


def open_rgb(path: str | os.PathLike, layout: str) -> Image.Image:
    """Fully decode ``path`` as RGB (a lazy ``Image.open`` would defer truncation errors to later)."""
    with _decoding(path, layout) as image:
        return image.convert("RGB")


def decode(path: str | os.PathLike, layout: str) -> None:
    """Decode every byte of ``path`` and keep nothing: what a check before a run needs to know that the file
    reads. A truncated file is an error even where a caller set PIL's ``LOAD_TRUNCATED_IMAGES``; a JPEG is
    decoded at 1/8 scale (libjpeg still reads the whole entropy-coded stream, so truncation and broken
    markers show as at full scale, several times faster)."""
    lenient, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
    try:
        with _decoding(path, layout) as image:
            if image.format == "JPEG":
                image.draft(image.mode, (1, 1))
            image.load()
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = lenient


def open_array(
    path: str | os.PathLike, layout: str, mode: str | None = None
) -> tuple[np.ndarray, Image.Image]:
    """Decode ``path`` without conversion; returns (pixels, image). With ``mode``, require that PIL mode."""
    with _decoding(path, layout) as image:
        image.load()
    if mode is not None and image.mode != mode:
        raise DatasetError.at(path, f"image mode {image.mode!r}, not {mode!r}", layout)
    return np.asarray(image), image


def readable_split(
    paths: Iterable[str | os.PathLike], check: Callable[[Path], object]
) -> tuple[list[Path], list[Path]]:
    """Split ``paths`` into (readable, unreadable) by running ``check`` (which raises DatasetError)."""
    good, bad = [], []
    for path in paths:
        try:
            check(Path(path))
            good.append(Path(path))
        except DatasetError:
            bad.append(Path(path))
    return good, bad
