# The golden traces' own budget: a fixed, test-owned setting, deliberately NOT derived from micro.py, so that
# retuning a real budget never moves a trace. Only a change of what the code computes does.
#
# Sizes: the micro architecture (32 px, patch 4, dim 64, depth 4) on 32 SynthScenes images, batch 8: 4 steps
# an epoch, 6 epochs = 24 steps, so every schedule that reads the epoch or the step (warm-up, cosine, HPM's
# easy-to-hard curriculum, RC-MAE's within-epoch momentum, CMT-MAE's stage switch at 25 %) moves in a trace.
budget = "golden"

data = dict(
    name="synthscenes-golden",
    root=None,  # tests.golden.traces writes it to a temporary folder
    seed=0,
    imagenet=dict(image_size=32, train=32, val=16, objects=(2, 4)),
    ade20k=dict(image_size=32, train=8, val=4, objects=(1, 3), radius=(0.2, 0.4)),
    coco=dict(image_size=64, train=8, val=4, objects=(1, 4)),
    davis=dict(image_size=64, frames=4, train=1, val=1, objects=(2, 3)),
)

model = dict(arch="micro", mask_ratio=0.75, norm_pix_loss=True)

pretrain = dict(
    epochs=6,
    warmup_epochs=1,
    batch_size=8,
    # lr 4.7e-4: the weights move every step, while one thread against two (or another CPU) stays 8x inside
    # the fingerprint tolerance (at 1.6e-3, Adam amplified summation-order noise in small gradients to 7e-7)
    base_lr=0.015,
    min_lr=0.0,
    weight_decay=0.05,
    betas=(0.9, 0.95),
    crop_scale=(0.2, 1.0),
    hflip=True,
    equalize="epochs",
    ema=dict(half_life_fraction=0.1, paper_momentum=0.996),  # m = 0.75: an EMA that moves every step
    precision="fp32",
    checkpoint_interval_epochs=6,  # one checkpoint, at the end (the atomic writer is on the path)
    in_memory=True,  # the small budgets' path (decoded array, batched crops); mae+file-reader: the files
    num_workers=0,
    log_interval=1,
)

# CMT-MAE's CLIP teacher, trained by reproduce/clip_teacher_training.py on the 32 captioned images: 2 epochs x
# 4 steps. tests/test_teacher.py trains its teachers with this recipe too (at lr 1e-3).
clip_teacher = dict(
    epochs=2,
    batch_size=8,
    lr=2e-3,
    weight_decay=0.1,
    betas=(0.9, 0.98),
    eps=1e-6,
    warmup_fraction=0.25,
    hflip=True,
    salient_caption=1.0,
)

# The ImageNet-1K protocols. augment=True: the probe's views are drawn and encoded every step (the paper's
# path, on which a trainable encoder would show).
linear_probe = dict(
    pool="cls",  # the probe feature: 'cls' (MAE's --cls_token) or 'avg' (pooled patch tokens, --global_pool)
    epochs=2,
    warmup_epochs=1,
    batch_size=8,
    base_lr=40.0,
    min_lr=0.0,
    weight_decay=0.0,
    optimizer="lars",
    momentum=0.9,
    trust_coefficient=0.001,
    augment=True,
    crop_scale=(0.08, 1.0),
    eval_crop_pct=1.0,
    head_init_std=0.01,
    feature_batch_size=16,
    num_workers=0,
)
finetune = dict(
    epochs=2,
    warmup_epochs=0.5,
    batch_size=8,
    accum_iter=1,
    base_lr=5e-3,
    layer_decay=0.65,
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
    eval_crop_pct=1.0,
    head_init_std=2e-5,
    clip_grad=None,
    precision="fp32",
    num_workers=0,
    checkpoint_interval_epochs=0,
    log_interval=1,
)
knn = dict(pool="cls", k=5, temperature=0.07, eval_crop_pct=1.0, feature_batch_size=16, num_workers=0)

ade20k = dict(
    dataset="SynthScenesSegDataset",
    train_split="training",
    val_split="validation",
    crop_size=32,
    scale=(128, 32),
    ratio_range=(0.5, 2.0),
    cat_max_ratio=0.75,
    flip_prob=0.5,
    photometric_distortion=True,
    iters=6,
    batch_size=4,
    lr=1e-3,
    betas=(0.9, 0.999),
    weight_decay=0.05,
    layer_decay=0.65,
    warmup_iters=2,
    warmup_start_factor=1e-6,
    poly_power=1.0,
    min_lr=0.0,
    drop_path=0.1,
    head_channels=32,
    aux_channels=16,
    aux_loss_weight=0.4,
    test_mode="slide",
    slide_stride=21,
    precision="fp32",
    num_workers=0,
    checkpoint_interval=0,
    log_interval=1,
)

coco = dict(
    protocol="vitdet",
    image_size=64,
    lsj_ratio_range=(0.1, 2.0),
    hflip_prob=0.5,
    pad_value=114,
    window_size=8,
    global_blocks=(1, 3),
    out_indices=(0, 1, 2, 3),
    drop_path_rate=0.1,
    neck_channels=32,
    fc_channels=64,
    anchor_scale=4,
    rpn_sampler_num=64,
    rpn_nms_pre=200,
    rpn_max_per_img=50,
    rcnn_sampler_num=32,
    test_rpn_nms_pre=200,
    test_rpn_max_per_img=50,
    test_max_per_img=20,
    batch_size=2,
    lr=2e-3,
    betas=(0.9, 0.999),
    weight_decay=0.1,
    layer_decay=0.7,
    max_iters=6,
    warmup_iters=2,
    warmup_start_factor=0.001,
    lr_steps=(4, 5),
    lr_gamma=0.1,
    precision="fp32",
    test_batch_size=4,
    num_workers=0,
    checkpoint_interval=0,
    log_interval=1,
)
