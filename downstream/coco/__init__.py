"""COCO detection and instance segmentation (Mask R-CNN through mmdet) on the shared ViT.

from downstream.coco import run_coco
"""

from downstream.coco.protocol import run_coco

__all__ = ["run_coco"]
