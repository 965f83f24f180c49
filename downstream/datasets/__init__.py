"""Loaders and layout checks for the real datasets (and SynthScenes, which is written in their layouts).

- ``imagenet``: ``ImageFolderDataset`` (class folders -> ``(image, label, index)``), ``check_imagenet_root``,
  ``read_captions``.
- ``ade20k`` (imports mmseg): ``SynthScenesSegDataset``, ``CheckedADE20KDataset`` in mmseg's DATASETS;
  ``ade20k_layout``: ``check_ade20k_root``, ``check_label_map`` (no mmseg import).
- ``coco`` (imports mmdet): ``SynthScenesCocoDataset``, ``CheckedCocoDataset`` in mmdet's DATASETS;
  ``coco_layout``: ``check_coco_root``, ``load_coco_json`` (no mmdet import).
- ``davis``: ``DavisDataset`` / ``DavisSequence``, ``check_davis_root``, ``write_indexed_png``.
- ``roots``: ``check_data_root`` checks all four sub-roots of one data root before a run.
- ``scan``: ``scan_data_root``, the check every run does before any work (``reproduce.data_root.prepare``):
  every file decoded once, the result remembered in the root against the manifest hash and a file listing.

Every problem is a ``DatasetError`` whose message is one line: the path, the problem, the expected layout.
The mmseg / mmdet modules are imported lazily here (they take seconds to import); mmengine configs register
them with ``custom_imports=dict(imports=['downstream.datasets.ade20k'])`` (or ``.coco``).
"""

from __future__ import annotations

import importlib
from typing import Any

from downstream.datasets.ade20k_layout import check_ade20k_root
from downstream.datasets.coco_layout import check_coco_root, load_coco_json
from downstream.datasets.davis import DavisDataset, DavisSequence, check_davis_root, write_indexed_png
from downstream.datasets.errors import DatasetError
from downstream.datasets.imagenet import ImageFolderDataset, check_imagenet_root, read_captions
from downstream.datasets.roots import check_data_root
from downstream.datasets.scan import RootSpec, scan_data_root

_LAZY = {
    "SynthScenesSegDataset": "ade20k",
    "CheckedADE20KDataset": "ade20k",
    "SynthScenesCocoDataset": "coco",
    "CheckedCocoDataset": "coco",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"downstream.datasets.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DatasetError",
    "DavisDataset",
    "DavisSequence",
    "ImageFolderDataset",
    "RootSpec",
    "check_ade20k_root",
    "check_coco_root",
    "check_data_root",
    "check_davis_root",
    "check_imagenet_root",
    "load_coco_json",
    "read_captions",
    "scan_data_root",
    "write_indexed_png",
    *_LAZY,
]
