# small: a real but affordable run on one GPU: ViT-S/16 on an ImageNet subset (ImageNet-100 or Imagenette)
# in the ImageNet class-folder layout under --data-root.
budget = "small"

data = dict(
    name="imagenet-subset",
    root=None,  # --data-root DIR: DIR/imagenet/{train,val}/<class>/*.JPEG (README.md, "Real datasets")
    seed=0,
    imagenet=dict(image_size=224),
)

model = dict(arch="vit_small_patch16", mask_ratio=0.75, norm_pix_loss=True)

pretrain = dict(
    epochs=200,
    warmup_epochs=20,
    batch_size=512,
    base_lr=1.5e-4,
    min_lr=0.0,
    weight_decay=0.05,
    betas=(0.9, 0.95),
    crop_scale=(0.2, 1.0),
    hflip=True,
    equalize="epochs",
    ema=dict(half_life_fraction=0.1, paper_momentum=0.996),
    precision="auto",
    checkpoint_interval_epochs=10,
    num_workers=8,
    log_interval=50,
)

# ---- ImageNet-1K protocols (downstream/in1k) on the subset: MAE's recipes (base.py) on one GPU ----
# Batches reduced for one GPU; lr = base_lr x batch / 256. Layer decay 0.75 is RC-MAE's ViT-S value.
linear_probe = dict(
    pool="cls",  # the probe feature: 'cls' (MAE's --cls_token) or 'avg' (pooled patch tokens, --global_pool)
    epochs=90,
    warmup_epochs=10,
    batch_size=4096,
    base_lr=0.1,
    min_lr=0.0,
    weight_decay=0.0,
    optimizer="lars",
    momentum=0.9,
    trust_coefficient=0.001,
    augment=True,
    crop_scale=(0.08, 1.0),
    eval_crop_pct=224 / 256,
    head_init_std=0.01,
    feature_batch_size=512,
    num_workers=8,
)
finetune = dict(
    epochs=100,
    warmup_epochs=5,
    batch_size=1024,
    accum_iter=4,  # 256 images per step on one GPU
    base_lr=5e-4,
    layer_decay=0.75,
    drop_path=0.1,
    weight_decay=0.05,
    min_lr=1e-6,
    betas=(0.9, 0.999),
    mixup=0.8,
    cutmix=1.0,
    mixup_prob=1.0,
    mixup_switch_prob=0.5,
    mixup_mode="batch",
    label_smoothing=0.1,
    auto_augment="rand-m9-mstd0.5-inc1",
    reprob=0.25,
    remode="pixel",
    recount=1,
    crop_scale=(0.08, 1.0),
    eval_crop_pct=224 / 256,
    head_init_std=2e-5,
    clip_grad=None,
    precision="auto",
    num_workers=8,
    checkpoint_interval_epochs=10,
    log_interval=50,
)
knn = dict(pool="cls", k=20, temperature=0.07, eval_crop_pct=224 / 256, feature_batch_size=512, num_workers=8)

# ---- ADE20K semantic segmentation (downstream/ade20k) on the real ADE20K (--data-root DIR/ade20k): mmseg's
# MAE protocol (base.py gives each value's source) on one GPU with ViT-S/16. The schedule is mmseg's short
# standard one (schedule_40k) with the paper's warm-up; the global batch stays 16 (one GPU x 16 images, bf16).
ade20k = dict(
    dataset="CheckedADE20KDataset",
    train_split="training",
    val_split="validation",
    crop_size=512,
    scale=(2048, 512),
    ratio_range=(0.5, 2.0),
    cat_max_ratio=0.75,
    flip_prob=0.5,
    photometric_distortion=True,
    iters=40000,  # mmseg's schedule_40k (the paper: 160k)
    batch_size=16,
    lr=1e-4,
    betas=(0.9, 0.999),
    weight_decay=0.05,
    layer_decay=0.65,
    warmup_iters=1500,
    warmup_start_factor=1e-6,
    poly_power=1.0,
    min_lr=0.0,
    drop_path=0.1,
    head_channels=384,  # BEiT's rule, the ViT's width (ViT-B: 768)
    aux_channels=256,
    aux_loss_weight=0.4,
    test_mode="slide",
    slide_stride=341,
    precision="auto",
    num_workers=8,
    checkpoint_interval=4000,
    log_interval=50,
)

# ---- DAVIS-2017 label propagation (downstream/davis) on the real DAVIS-2017 (--data-root DIR/davis), with
# DINO's own ViT-S/16 setting: every value is DINO's (base.py explains each key).
davis = dict(
    split="val",
    resolution="480p",
    short_side=480,
    long_side_multiple=64,
    frame_resize="bilinear",
    mean=(0.485, 0.456, 0.406),
    std=(0.228, 0.224, 0.225),
    pos_embed="interpolate",
    features="last_block_normed",
    l2_normalize=True,
    temperature=0.1,
    window_radius=12,
    topk=5,
    n_last_frames=7,
    soft_context=True,
    first_frame_downsample="nearest",
    label_upsample="bilinear",
    norm_mask=True,
    output_resize="nearest",
    feature_batch_size=8,
)

# ---- COCO detection + instance segmentation (downstream/coco) on the real COCO (--data-root DIR/coco), one
# GPU: ViTDet (base.py gives each paper value and its source) for ViT-S/16 at half ViTDet's resolution and a
# 1x-length schedule. Not piloted on a GPU yet: the lr follows ViTDet's linear rule (1e-4 at batch 64).
coco = dict(
    protocol="vitdet",
    image_size=512,  # half ViTDet's 1024: a 32x32 token grid
    lsj_ratio_range=(0.1, 2.0),
    hflip_prob=0.5,
    pad_value=114,
    window_size=14,  # the pretraining grid (224/16), as ViTDet
    global_blocks=(2, 5, 8, 11),  # ViT-S has ViT-B's depth (12): ViTDet's blocks
    out_indices=(2, 5, 8, 11),
    drop_path_rate=0.1,
    neck_channels=256,
    fc_channels=1024,
    anchor_scale=8,
    rpn_sampler_num=256,
    rpn_nms_pre=2000,
    rpn_max_per_img=1000,
    rcnn_sampler_num=512,
    test_rpn_nms_pre=1000,
    test_rpn_max_per_img=1000,
    test_max_per_img=100,
    batch_size=16,
    lr=2.5e-5,  # ViTDet's 1e-4 at batch 64, scaled linearly (its auto_scale_lr rule)
    betas=(0.9, 0.999),
    weight_decay=0.1,
    layer_decay=0.7,
    max_iters=90000,  # ~12 epochs of COCO train2017 at batch 16 (the "1x" length)
    warmup_iters=250,
    warmup_start_factor=0.001,
    lr_steps=(79200, 86400),  # 88 % and 96 % of the run, as ViTDet's steps
    lr_gamma=0.1,
    precision="auto",
    test_batch_size=4,
    num_workers=8,
    checkpoint_interval=5000,
    log_interval=50,
)
