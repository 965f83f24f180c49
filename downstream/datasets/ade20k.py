"""ADE20K-layout segmentation datasets for mmsegmentation, with root checks and loud errors.

``SynthScenesSegDataset`` carries SynthScenes' shape classes (mmseg's ``ADE20KDataset`` would refuse them:
its metainfo fixes ADE's 150 names); ``CheckedADE20KDataset`` is mmseg's ADE20K with the same checks. Both
are registered in mmseg's ``DATASETS``; configs name them by type and import this module through
``custom_imports=dict(imports=['downstream.datasets.ade20k'])``.

Label files hold 0 = background/"other" and k + 1 = class k; with ``reduce_zero_label=True`` (the default,
as ADE20K) mmseg maps 0 to the ignore index 255 and k + 1 to k.
"""

from __future__ import annotations

import logging
import os.path as osp
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from mmseg.datasets import ADE20KDataset, BaseSegDataset
from mmseg.registry import DATASETS

from downstream.datasets.ade20k_layout import image_label_pairs
from downstream.datasets.errors import ADE20K_LAYOUT, DatasetError
from downstream.datasets.images import open_array, open_rgb, readable_split
from synthscenes.shapes import SHAPE_DISPLAY_COLOURS, SHAPES

logger = logging.getLogger(__name__)


class _CheckedSegMixin:
    """Root checks at load time, an explicit ``skip_corrupt``, and decode / label errors that name the file.

    ``skip_corrupt=True`` decodes every image and label map once at load time and leaves out the unreadable
    pairs; ``skipped`` lists their image paths (``num_skipped`` goes into the run's provenance). Otherwise a
    corrupt file raises DatasetError when it is first read."""

    def __init__(self, *args: Any, skip_corrupt: bool = False, **kwargs: Any) -> None:
        self.skip_corrupt = skip_corrupt
        self.skipped: list[str] = []
        super().__init__(*args, **kwargs)

    @property
    def num_skipped(self) -> int:
        return len(self.skipped)

    @property
    def _num_labels(self) -> int:
        return len(self._metainfo["classes"])

    def load_data_list(self) -> list[dict]:
        img_dir, seg_dir = Path(self.data_prefix["img_path"]), Path(self.data_prefix["seg_map_path"])
        if self.ann_file:
            if not osp.isfile(self.ann_file):
                raise DatasetError.at(self.ann_file, "missing split list", ADE20K_LAYOUT)
        else:
            image_label_pairs(img_dir, seg_dir, self.img_suffix, self.seg_map_suffix)
        data_list = super().load_data_list()
        if self.skip_corrupt:
            data_list = self._drop_unreadable(data_list)
        return data_list

    def _drop_unreadable(self, data_list: list[dict]) -> list[dict]:
        def check(path: Path) -> None:
            info = by_image[str(path)]
            open_rgb(info["img_path"], ADE20K_LAYOUT)
            open_array(info["seg_map_path"], ADE20K_LAYOUT)

        by_image = {info["img_path"]: info for info in data_list}
        _, bad = readable_split(by_image, check)
        self.skipped = [str(path) for path in bad]
        if self.skipped:
            logger.warning(
                "%s: skipped %d unreadable images (skip_corrupt)", self.data_root, len(self.skipped)
            )
        skipped = set(self.skipped)
        return [info for info in data_list if info["img_path"] not in skipped]

    def prepare_data(self, idx: int) -> Any:
        try:
            data = super().prepare_data(idx)
        except DatasetError:
            raise
        except Exception:
            # Only on the failure path: if a file of this sample is corrupt, say so by name instead of
            # letting a decoder's traceback (or an mmcv assert) stand for it.
            info = self.get_data_info(idx)
            open_rgb(info["img_path"], ADE20K_LAYOUT)
            if info.get("seg_map_path"):
                open_array(info["seg_map_path"], ADE20K_LAYOUT)
            raise
        self._check_labels(data, idx)
        return data

    def _check_labels(self, data: Any, idx: int) -> None:
        # After loading (and reduce_zero_label) every value must be a class index or the ignore index.
        if not isinstance(data, dict):
            return
        sample = data.get("data_samples")
        labels = getattr(getattr(sample, "gt_sem_seg", None), "data", None)
        if labels is None:
            labels = data.get("gt_seg_map")
        if labels is None:
            return
        values = np.unique(np.asarray(labels))
        bad = [int(v) for v in values if v >= self._num_labels and v != self.ignore_index]
        if bad:
            info = self.get_data_info(idx)
            raw = [v + 1 for v in bad] if self.reduce_zero_label else bad
            raise DatasetError.at(
                info.get("seg_map_path"),
                f"unknown label(s) {raw} for {self._num_labels} classes "
                f"(reduce_zero_label={self.reduce_zero_label})",
                ADE20K_LAYOUT,
            )


@DATASETS.register_module()
class SynthScenesSegDataset(_CheckedSegMixin, BaseSegDataset):
    """SynthScenes' ADE20K-layout segmentation split: classes = the shape types, background ignored."""

    METAINFO: ClassVar[dict] = dict(classes=SHAPES, palette=[list(c) for c in SHAPE_DISPLAY_COLOURS])

    def __init__(
        self,
        img_suffix: str = ".jpg",
        seg_map_suffix: str = ".png",
        reduce_zero_label: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=reduce_zero_label,
            **kwargs,
        )


@DATASETS.register_module()
class CheckedADE20KDataset(_CheckedSegMixin, ADE20KDataset):
    """mmseg's ADE20KDataset (150 classes) with the root checks and loud errors."""
