"""One call that checks a whole data root (SynthScenes or real) before a run."""

from __future__ import annotations

import os
from pathlib import Path

from downstream.datasets.davis import check_davis_root
from downstream.datasets.errors import DatasetError
from downstream.datasets.imagenet import check_imagenet_root

LAYOUTS = ("imagenet", "ade20k", "coco", "davis")


def check_data_root(
    root: str | os.PathLike, layouts: tuple[str, ...] = LAYOUTS, full: bool = True, synthscenes: bool = True
) -> dict[str, object]:
    """Check ``root/<layout>`` for each layout (both splits); ``full`` decodes every file and checks every
    label. With ``synthscenes``, label ranges and COCO categories are SynthScenes' classes, else the real
    datasets' (ADE20K 150, COCO's own categories). Returns counts per layout; raises DatasetError."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError.at(root, "missing data root", "<root>/{imagenet,ade20k,coco,davis}")
    counts: dict[str, object] = {}
    if "imagenet" in layouts:
        counts["imagenet"] = check_imagenet_root(root / "imagenet", full=full)
    if "ade20k" in layouts:
        from downstream.datasets.ade20k_layout import check_ade20k_root
        from synthscenes.shapes import SHAPES

        classes = len(SHAPES) if synthscenes else 150
        counts["ade20k"] = {
            s: check_ade20k_root(root / "ade20k", s, classes, full=full) for s in ("training", "validation")
        }
    if "coco" in layouts:
        from downstream.datasets.coco_layout import check_coco_root
        from synthscenes.shapes import SHAPES

        names = SHAPES if synthscenes else None
        counts["coco"] = {
            s: check_coco_root(root / "coco", s, full=full, classes=names) for s in ("train2017", "val2017")
        }
    if "davis" in layouts:
        counts["davis"] = {s: check_davis_root(root / "davis", s, full=full) for s in ("train", "val")}
    return counts
