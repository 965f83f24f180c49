# ViTDet Mask R-CNN on the shared ViT: mmdet 3.2.0 projects/ViTDet `vitdet_mask-rcnn_vit-b-mae_lsj-100e.py`
# (with its `lsj-100e_coco-instance.py`), as ColorMAE's benchmarks/object_detection runs it. The values are
# the paper scale (ViT-B/16, 1024 px); downstream/coco/protocol.py sets a budget's `coco` section on top and
# the budget `base` changes nothing (tests/test_coco.py checks it). Every change from the mmdet bases below
# is what ViTDet changes, plus the shared backbone adapter and the checked datasets.
_base_ = [
    "mmdet::_base_/models/mask-rcnn_r50_fpn.py",
    "mmdet::common/lsj-100e_coco-instance.py",  # LSJ pipeline, COCO metric, mmdet's runtime
]

custom_imports = dict(
    imports=[
        "downstream.mm_backbone",
        "downstream.optim",
        "downstream.datasets.coco",
        "downstream.coco.norm",
    ],
    allow_failed_imports=False,
)

image_size = (1024, 1024)
norm_cfg = dict(type="LN2d", requires_grad=True)  # ViTDet's LayerNorm over channels in the neck and heads

model = dict(
    data_preprocessor=dict(
        pad_size_divisor=32, batch_augments=[dict(type="BatchFixedSizePad", size=image_size, pad_mask=True)]
    ),
    backbone=dict(
        _delete_=True,
        type="MIMViT",
        arch=None,  # from the encoder file's metadata
        checkpoint=None,  # the encoder file (protocol.py); None = random MAE initialisation
        img_size=image_size,
        pyramid="last",  # the last block's map only: ViTDet's simple feature pyramid
        window_size=14,
        global_blocks=[2, 5, 8, 11],
        drop_path_rate=0.1,
    ),
    neck=dict(
        _delete_=True,
        type="SimpleFeaturePyramid",
        in_channels=768,  # the encoder's width (protocol.py: from the encoder file)
        out_channels=256,
        patch_size=16,  # scales patch/4 ... patch/32: strides 4, 8, 16, 32 (+ P6 at 64)
        num_outs=5,
    ),
    rpn_head=dict(num_convs=2),
    roi_head=dict(
        bbox_head=dict(type="Shared4Conv1FCBBoxHead", conv_out_channels=256, norm_cfg=norm_cfg),
        mask_head=dict(norm_cfg=norm_cfg),
    ),
)

backend_args = None
train_pipeline = [
    dict(type="LoadImageFromFile", backend_args=backend_args),
    dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
    dict(type="RandomFlip", prob=0.5),
    dict(type="RandomResize", scale=image_size, ratio_range=(0.1, 2.0), keep_ratio=True),
    dict(
        type="RandomCrop",
        crop_type="absolute_range",
        crop_size=image_size,
        recompute_bbox=True,
        allow_negative_crop=True,
    ),
    dict(type="FilterAnnotations", min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type="Pad", size=image_size, pad_val=dict(img=(114, 114, 114))),
    dict(type="PackDetInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile", backend_args=backend_args),
    dict(type="Resize", scale=image_size, keep_ratio=True),
    dict(type="Pad", size=image_size, pad_val=dict(img=(114, 114, 114))),
    dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
    dict(type="PackDetInputs", meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor")),
]

data_root = "data/coco/"
train_dataloader = dict(
    batch_size=4,  # per GPU; 16 GPUs
    num_workers=8,
    sampler=dict(type="DefaultSampler", shuffle=True),
    dataset=dict(
        _delete_=True,  # ViTDet iterates over the dataset itself (no RepeatDataset)
        type="CheckedCocoDataset",
        data_root=data_root,
        ann_file="annotations/instances_train2017.json",
        data_prefix=dict(img="train2017/"),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline,
        backend_args=backend_args,
    ),
)
# The protocol reports the model after the last iteration, evaluated once: no validation during training.
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    dataset=dict(
        type="CheckedCocoDataset",
        data_root=data_root,
        ann_file="annotations/instances_val2017.json",
        data_prefix=dict(img="val2017/"),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args,
    ),
)
test_evaluator = dict(
    type="CocoMetric",
    ann_file=data_root + "annotations/instances_val2017.json",
    metric=["bbox", "segm"],
    format_only=False,
    backend_args=backend_args,
)

optim_wrapper = dict(
    _delete_=True,
    type="AmpOptimWrapper",
    # MAE's layer decay keyed on timm names (downstream/optim.py), in place of ViTDet's
    # LayerDecayOptimizerConstructor, which keys on mmdet's ViT names
    constructor="LayerDecayOptimWrapperConstructor",
    paramwise_cfg=dict(layer_decay=0.7),
    optimizer=dict(type="AdamW", lr=0.0001, betas=(0.9, 0.999), weight_decay=0.1),
)

max_iters = 184375  # 100 epochs of COCO at batch 64
train_cfg = dict(_delete_=True, type="IterBasedTrainLoop", max_iters=max_iters, val_interval=max_iters)
test_cfg = dict(type="TestLoop")
param_scheduler = [
    dict(type="LinearLR", start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(type="MultiStepLR", begin=0, end=max_iters, by_epoch=False, milestones=[163889, 177546], gamma=0.1),
]
default_hooks = dict(
    logger=dict(type="LoggerHook", interval=50),
    checkpoint=dict(type="CheckpointHook", by_epoch=False, save_last=True, interval=5000, max_keep_ckpts=5),
)
log_processor = dict(type="LogProcessor", window_size=50, by_epoch=False)
auto_scale_lr = dict(enable=False, base_batch_size=64)
