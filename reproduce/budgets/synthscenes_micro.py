# SynthScenes for the `micro` budget (CI regression): sizes from ../shared/reference/calibration.md.
# `reproduce/budgets/micro.py` inherits this file (`_base_ = ['./synthscenes_micro.py']`); keep only `data`.
# Sub-roots: <root>/imagenet, <root>/ade20k, <root>/coco, <root>/davis (the real layouts).
data = dict(
    name="synthscenes-micro",
    root="data/synthscenes-micro",  # relative to the repository root
    seed=0,
    # Class folders: 32 px, ViT patch 4; 2-4 objects so a caption never names the class alone.
    imagenet=dict(image_size=32, train=2048, val=512, objects=(2, 4)),
    # UperNet at 32 px. 1-3 objects of radius 0.2-0.4 of the side (5-10 patches across): at the default
    # 0.1-0.3 the smallest span 2 patches, too few to read a shape from (pilot: downstream/ade20k/README.md).
    ade20k=dict(image_size=32, train=512, val=128, objects=(1, 3), radius=(0.2, 0.4)),
    # Mask R-CNN at 64 px with reduced sampling, 10 iterations x batch 8; objects 18-41 px across.
    coco=dict(image_size=64, train=256, val=64, objects=(1, 4)),
    # Label propagation: 4 val clips x 16 frames.
    davis=dict(image_size=64, frames=16, train=2, val=4, objects=(2, 3)),
)
