"""Writers of the four real dataset layouts. Each module exposes the same two functions:

- ``write_item(cfg, split, index, root) -> ItemResult``: render item ``index`` of ``split`` and write its
  files (images, label maps). Pure in (cfg.seed, split, index), so items can be written in parallel.
- ``write_index(cfg, split, items, root) -> list[FileRecord]``: write the split's index files (captions CSV,
  COCO json, DAVIS ImageSets) from the items' metadata, in item order.

``SPLIT_KEYS`` names each (layout, split) in the manifest by the layout's own folder names.
"""

from __future__ import annotations

from types import ModuleType

from synthscenes.layouts import ade20k, coco, davis, imagenet
from synthscenes.layouts.common import ItemResult

WRITERS: dict[str, ModuleType] = {"imagenet": imagenet, "ade20k": ade20k, "coco": coco, "davis": davis}

SPLIT_KEYS: dict[tuple[str, str], str] = {
    (layout, split): f"{layout}/{module.SPLIT_DIRS[split]}"
    for layout, module in WRITERS.items()
    for split in ("train", "val")
}

__all__ = ["SPLIT_KEYS", "WRITERS", "ItemResult"]
