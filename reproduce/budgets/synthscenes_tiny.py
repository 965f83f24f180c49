# SynthScenes for the `tiny` budget (Table 1 default): sizes from ../shared/reference/calibration.md.
# `reproduce/budgets/tiny.py` inherits this file (`_base_ = ['./synthscenes_tiny.py']`); keep only `data`.
# Sub-roots: <root>/imagenet, <root>/ade20k, <root>/coco, <root>/davis (the real layouts).
data = dict(
    name="synthscenes-tiny",
    root="data/synthscenes-tiny",  # relative to the repository root
    seed=0,
    # Class folders: 64 px, ViT patch 8; 2-4 objects so a caption never names the class alone.
    imagenet=dict(image_size=64, train=8192, val=2048, objects=(2, 4)),
    # UperNet at 64 px. 1-3 objects of radius 0.2-0.4 of the side (5-10 patches across): at the default
    # 0.1-0.3 the smallest span 2 patches, too few to read a shape from (pilot: downstream/ade20k/README.md).
    ade20k=dict(image_size=64, train=2048, val=512, objects=(1, 3), radius=(0.2, 0.4)),
    # Mask R-CNN at 128 px with reduced sampling; objects 36-82 px across.
    coco=dict(image_size=128, train=1024, val=256, objects=(1, 4)),
    # Label propagation: 8 val clips x 16 frames.
    davis=dict(image_size=64, frames=16, train=4, val=8, objects=(2, 3)),
)
