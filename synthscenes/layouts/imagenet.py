"""ImageNet-style class-folder tree: ``imagenet/{train,val}/<shape>/ss_<split>_<index>.png``, plus
``imagenet/captions_{train,val}.csv`` (columns ``filepath``, relative to ``imagenet/``, and ``caption``).

PNG, not JPEG: the classification images are tiny (32-64 px) and JPEG would blur the shapes' outlines,
which are the whole signal. The class-folder reader accepts .JPEG/.jpg/.png, as ImageNet copies vary.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from synthscenes.config import DatasetConfig
from synthscenes.files import FileRecord, item_rng, png_bytes, write_file
from synthscenes.layouts.common import ItemResult
from synthscenes.scene import RenderedScene, Scene, caption, render_scene, sample_scene
from synthscenes.shapes import SHAPES

SPLIT_DIRS = {"train": "train", "val": "val"}


def draw_item(cfg: DatasetConfig, split: str, index: int) -> tuple[Scene, RenderedScene, str]:
    """(scene, rendering, caption) of one item: what ``write_item`` writes, for tests and analyses."""
    layout = cfg.imagenet
    rng = item_rng(cfg.seed, "imagenet", split, index)
    # Classes are balanced by construction (index modulo the number of classes), so every class folder
    # exists as soon as a split has len(SHAPES) items, and probes see no class imbalance.
    label = index % len(SHAPES)
    scene = sample_scene(
        rng,
        layout.image_size,
        layout.objects,
        layout.radius,
        layout.largest_radius,
        largest_shape=SHAPES[label],
    )
    return scene, render_scene(scene), caption(scene, rng)


def write_item(cfg: DatasetConfig, split: str, index: int, root: Path) -> ItemResult:
    scene, rendered, text = draw_item(cfg, split, index)
    relpath = f"{split}/{SHAPES[scene.label]}/ss_{split}_{index:06d}.png"
    record = write_file(root, f"imagenet/{relpath}", png_bytes(rendered.image), f"imagenet/{split}")
    return ItemResult([record], {"filepath": relpath, "caption": text, "label": scene.label})


def write_index(cfg: DatasetConfig, split: str, items: list[ItemResult], root: Path) -> list[FileRecord]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["filepath", "caption"])
    for item in items:
        writer.writerow([item.meta["filepath"], item.meta["caption"]])
    data = buffer.getvalue().encode()
    return [write_file(root, f"imagenet/captions_{split}.csv", data, f"imagenet/{split}")]
