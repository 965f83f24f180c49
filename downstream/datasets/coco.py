"""COCO-layout detection / instance-segmentation datasets for mmdet, with root checks and loud errors.

mmdet's ``CocoDataset`` keeps only the annotations whose category names are in its metainfo classes (COCO's
80) and drops the others without a word. ``SynthScenesCocoDataset`` carries SynthScenes' shape classes and
refuses any annotation it would drop; ``CheckedCocoDataset`` is mmdet's COCO with the same checks (it only
counts, in ``dropped_annotations``, the degenerate boxes mmdet's protocol drops by design). Both are
registered in mmdet's ``DATASETS``; configs import ``downstream.datasets.coco`` via ``custom_imports``.
"""

from __future__ import annotations

import logging
import os.path as osp
from typing import Any, ClassVar

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

from downstream.datasets.coco_layout import load_coco_json
from downstream.datasets.errors import COCO_LAYOUT, DatasetError
from downstream.datasets.images import open_rgb, readable_split
from synthscenes.shapes import SHAPE_DISPLAY_COLOURS, SHAPES

logger = logging.getLogger(__name__)


class _CheckedCocoMixin:
    """Checks the annotation file and image folder at load time, counts what mmdet drops, an explicit
    ``skip_corrupt`` (unreadable images decoded once and left out, listed in ``skipped``), and decode errors
    that name the file."""

    # Whether an annotation that mmdet's parser drops (degenerate box) is an error rather than a count.
    strict_annotations = False

    def __init__(self, *args: Any, skip_corrupt: bool = False, **kwargs: Any) -> None:
        self.skip_corrupt = skip_corrupt
        self.skipped: list[str] = []
        self.dropped_annotations = 0
        super().__init__(*args, **kwargs)

    @property
    def num_skipped(self) -> int:
        return len(self.skipped)

    def load_data_list(self) -> list[dict]:
        document = load_coco_json(self.ann_file, tuple(self._metainfo["classes"]))
        image_dir = self.data_prefix.get("img", "")
        if image_dir and not osp.isdir(image_dir):
            raise DatasetError.at(image_dir, "missing folder", COCO_LAYOUT)
        data_list = super().load_data_list()
        loaded = sum(len(info["instances"]) for info in data_list)
        self.dropped_annotations = len(document["annotations"]) - loaded
        if self.dropped_annotations:
            if self.strict_annotations:
                raise DatasetError.at(
                    self.ann_file,
                    f"{self.dropped_annotations} annotations dropped by the parser (degenerate boxes)",
                    COCO_LAYOUT,
                )
            logger.warning(
                "%s: mmdet dropped %d degenerate annotations", self.ann_file, self.dropped_annotations
            )
        for info in data_list:
            if not osp.isfile(info["img_path"]):
                raise DatasetError.at(
                    info["img_path"], "listed in the annotation file but missing", COCO_LAYOUT
                )
        if self.skip_corrupt:
            _, bad = readable_split(
                [info["img_path"] for info in data_list], lambda p: open_rgb(p, COCO_LAYOUT)
            )
            self.skipped = [str(path) for path in bad]
            if self.skipped:
                logger.warning(
                    "%s: skipped %d unreadable images (skip_corrupt)", image_dir, len(self.skipped)
                )
            skipped = set(self.skipped)
            data_list = [info for info in data_list if info["img_path"] not in skipped]
        return data_list

    def prepare_data(self, idx: int) -> Any:
        try:
            return super().prepare_data(idx)
        except DatasetError:
            raise
        except Exception:
            open_rgb(self.get_data_info(idx)["img_path"], COCO_LAYOUT)  # names a corrupt image if that was it
            raise


@DATASETS.register_module()
class SynthScenesCocoDataset(_CheckedCocoMixin, CocoDataset):
    """SynthScenes' COCO-layout split: classes = the shape types; no annotation may be dropped."""

    METAINFO: ClassVar[dict] = dict(classes=SHAPES, palette=[list(c) for c in SHAPE_DISPLAY_COLOURS])
    strict_annotations = True


@DATASETS.register_module()
class CheckedCocoDataset(_CheckedCocoMixin, CocoDataset):
    """mmdet's CocoDataset (80 classes) with the root checks and loud errors."""
