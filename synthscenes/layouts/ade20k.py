"""ADE20K in mmsegmentation's layout: ``ade20k/images/{training,validation}/ss_<split>_<index>.jpg`` and
``ade20k/annotations/{training,validation}/ss_<split>_<index>.png`` (single-channel label maps).

Label 0 is background, which plays ADE20K's "other" (ignored under ``reduce_zero_label=True``); shape type k
is label k + 1 on disk, so k after mmseg's reduce_zero_label.
"""

from __future__ import annotations

from pathlib import Path

from synthscenes.config import DatasetConfig
from synthscenes.files import FileRecord, jpeg_bytes, png_bytes, write_file
from synthscenes.layouts.common import ItemResult, draw_scene
from synthscenes.scene import RenderedScene, Scene

SPLIT_DIRS = {"train": "training", "val": "validation"}


def draw_item(cfg: DatasetConfig, split: str, index: int) -> tuple[Scene, RenderedScene]:
    """(scene, rendering) of one item: what ``write_item`` writes, for tests and analyses."""
    return draw_scene(cfg, "ade20k", split, index)


def write_item(cfg: DatasetConfig, split: str, index: int, root: Path) -> ItemResult:
    scene, rendered = draw_item(cfg, split, index)
    folder, key, stem = SPLIT_DIRS[split], f"ade20k/{SPLIT_DIRS[split]}", f"ss_{split}_{index:06d}"
    return ItemResult(
        [
            write_file(root, f"ade20k/images/{folder}/{stem}.jpg", jpeg_bytes(rendered.image), key),
            write_file(
                root, f"ade20k/annotations/{folder}/{stem}.png", png_bytes(rendered.semantic_map(scene)), key
            ),
        ]
    )


def write_index(cfg: DatasetConfig, split: str, items: list[ItemResult], root: Path) -> list[FileRecord]:
    return []  # mmseg lists the folders; ADE20K has no index file
