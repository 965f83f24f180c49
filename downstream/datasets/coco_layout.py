"""The COCO instances layout, checked without importing mmdet: the annotation file and the root."""

from __future__ import annotations

import json
from pathlib import Path

from downstream.datasets.errors import COCO_LAYOUT, DatasetError
from downstream.datasets.images import open_rgb

#: the keys every entry of a COCO instances file needs: what mmdet's parser, pycocotools' index and its
#: evaluation read without a default (``iscrowd`` has one; Mask R-CNN needs ``segmentation``)
REQUIRED_KEYS = {
    "images": ("id", "file_name", "width", "height"),
    "annotations": ("id", "image_id", "category_id", "bbox", "area", "segmentation"),
    "categories": ("id", "name"),
}


def _check_keys(path: Path, document: dict) -> None:
    """Every image, annotation and category has its required keys and an annotation's bbox is [x, y, w, h]:
    a missing one would otherwise be a KeyError deep in mmdet or pycocotools, mid-run."""
    for section, keys in REQUIRED_KEYS.items():
        for position, entry in enumerate(document[section]):
            if not isinstance(entry, dict):
                raise DatasetError.at(path, f"{section}[{position}] is not an object", COCO_LAYOUT)
            missing = [key for key in keys if key not in entry]
            if missing:
                name = (
                    f"{section}[{position}] (id {entry.get('id')})"
                    if "id" in entry
                    else f"{section}[{position}]"
                )
                raise DatasetError.at(
                    path, f"{name} lacks required key(s) {missing}; needs {list(keys)}", COCO_LAYOUT
                )
    for ann in document["annotations"]:
        box = ann["bbox"]
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, int | float) for v in box)):
            raise DatasetError.at(
                path, f"annotation {ann['id']} has bbox {box!r}, not [x, y, width, height]", COCO_LAYOUT
            )


def load_coco_json(path: str | Path, classes: tuple[str, ...] | None = None) -> dict:
    """Parse and check a COCO instances file: the three lists present, every entry with its required keys
    (``REQUIRED_KEYS``), ids consistent, and (with ``classes``) every annotation's category one of them.
    Raises DatasetError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError.at(path, "missing annotation file", COCO_LAYOUT)
    try:
        document = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise DatasetError.at(path, f"not valid JSON ({exc})", COCO_LAYOUT) from None
    if not isinstance(document, dict) or not all(
        isinstance(document.get(key), list) for key in ("images", "annotations", "categories")
    ):
        raise DatasetError.at(
            path, "not a COCO instances file (needs images, annotations, categories lists)", COCO_LAYOUT
        )
    _check_keys(path, document)
    names = {c["id"]: c["name"] for c in document["categories"]}
    if classes is not None:
        missing = [name for name in classes if name not in names.values()]
        if missing:
            raise DatasetError.at(path, f"categories lack the dataset's classes {missing}", COCO_LAYOUT)
    image_ids = {image.get("id") for image in document["images"]}
    for ann in document["annotations"]:
        cat = ann.get("category_id")
        if cat not in names or (classes is not None and names[cat] not in classes):
            raise DatasetError.at(
                path,
                f"annotation {ann.get('id')} has unknown category_id {cat} (known: {sorted(names)})",
                COCO_LAYOUT,
            )
        if ann.get("image_id") not in image_ids:
            raise DatasetError.at(
                path, f"annotation {ann.get('id')} refers to missing image {ann.get('image_id')}", COCO_LAYOUT
            )
    return document


def check_coco_root(
    root: str | Path, split: str = "val2017", full: bool = False, classes: tuple[str, ...] | None = None
) -> int:
    """Check ``root/annotations/instances_<split>.json`` and ``root/<split>/`` before a run: the json parses
    and is consistent, every listed image exists; with ``full``, every image decodes. Returns #images."""
    images = listed_images(root, split, classes)
    if full:
        for path in images:
            open_rgb(path, COCO_LAYOUT)
    return len(images)


def listed_images(root: str | Path, split: str, classes: tuple[str, ...] | None = None) -> list[Path]:
    """The image files ``root/annotations/instances_<split>.json`` lists (checked by ``load_coco_json``), each
    of which must exist in ``root/<split>/``."""
    root = Path(root)
    document = load_coco_json(root / "annotations" / f"instances_{split}.json", classes)
    image_dir = root / split
    if not image_dir.is_dir():
        raise DatasetError.at(image_dir, "missing folder", COCO_LAYOUT)
    paths = [image_dir / image["file_name"] for image in document["images"]]
    for path in paths:
        if not path.is_file():
            raise DatasetError.at(path, "listed in the annotation file but missing", COCO_LAYOUT)
    return paths
