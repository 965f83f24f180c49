"""COCO instances: ``coco/{train2017,val2017}/<image_id:012d>.jpg`` and
``coco/annotations/instances_{train2017,val2017}.json``.

One annotation per object: category = shape type (ids 1..K, names = shape names), a tight box around the
object's visible pixels ``[x, y, w, h]`` in COCO's pixel-edge convention, the visible instance mask as
compressed RLE (exact, unlike polygons), ``area`` = mask pixels, ``iscrowd`` = 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from synthscenes.config import DatasetConfig
from synthscenes.files import FileRecord, jpeg_bytes, write_file
from synthscenes.layouts.common import ItemResult, draw_scene
from synthscenes.scene import RenderedScene, Scene
from synthscenes.shapes import SHAPES

SPLIT_DIRS = {"train": "train2017", "val": "val2017"}


def box_of(mask: np.ndarray) -> list[int]:
    """Tight ``[x, y, w, h]`` of a non-empty mask; pixel (x, y) covers [x, x + 1) x [y, y + 1)."""
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    return [x0, y0, int(xs.max()) + 1 - x0, int(ys.max()) + 1 - y0]


def encode_mask(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def draw_item(cfg: DatasetConfig, split: str, index: int) -> tuple[Scene, RenderedScene]:
    """(scene, rendering) of one item: what ``write_item`` writes, for tests and analyses."""
    return draw_scene(cfg, "coco", split, index)


def write_item(cfg: DatasetConfig, split: str, index: int, root: Path) -> ItemResult:
    layout = cfg.coco
    scene, rendered = draw_item(cfg, split, index)
    image_id = index + 1
    file_name = f"{image_id:012d}.jpg"
    folder = SPLIT_DIRS[split]
    record = write_file(root, f"coco/{folder}/{file_name}", jpeg_bytes(rendered.image), f"coco/{folder}")
    objects = [
        {
            "category_id": obj.shape_index + 1,
            "bbox": box_of(mask),
            "area": int(mask.sum()),
            "segmentation": encode_mask(mask),
        }
        for obj, mask in zip(scene.objects, rendered.instance_masks())
    ]
    image = {"id": image_id, "file_name": file_name, "width": layout.image_size, "height": layout.image_size}
    return ItemResult([record], {"image": image, "objects": objects})


def categories() -> list[dict]:
    return [{"id": k + 1, "name": name, "supercategory": "shape"} for k, name in enumerate(SHAPES)]


def write_index(cfg: DatasetConfig, split: str, items: list[ItemResult], root: Path) -> list[FileRecord]:
    annotations = []
    for item in items:
        for obj in item.meta["objects"]:
            annotations.append(
                {"id": len(annotations) + 1, "image_id": item.meta["image"]["id"], "iscrowd": 0, **obj}
            )
    document = {
        "info": {"description": "SynthScenes", "version": cfg.fingerprint()["generator_version"]},
        "licenses": [],
        "images": [item.meta["image"] for item in items],
        "annotations": annotations,
        "categories": categories(),
    }
    folder = SPLIT_DIRS[split]
    data = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return [write_file(root, f"coco/annotations/instances_{folder}.json", data, f"coco/{folder}")]
