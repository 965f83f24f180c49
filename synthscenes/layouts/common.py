"""What the layout writers share: what one writes for an item, and the scene of a dense-layout item."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from synthscenes.config import DatasetConfig
from synthscenes.files import FileRecord, item_rng
from synthscenes.scene import RenderedScene, Scene, render_scene, sample_scene
from synthscenes.shapes import SHAPES


@dataclass
class ItemResult:
    files: list[FileRecord]
    meta: dict[str, Any] = field(
        default_factory=dict
    )  # what the split's index files need (caption, boxes...)


def draw_scene(cfg: DatasetConfig, layout_name: str, split: str, index: int) -> tuple[Scene, RenderedScene]:
    """(scene, rendering) of one item of a dense layout (``'ade20k'``, ``'coco'``): a scene drawn from the
    layout's own keyed stream (seed, layout, split, index) and its sizes."""
    layout = getattr(cfg, layout_name)
    rng = item_rng(cfg.seed, layout_name, split, index)
    scene = sample_scene(
        rng, layout.image_size, layout.objects, layout.radius, shapes=layout.shapes or SHAPES
    )
    return scene, render_scene(scene)
