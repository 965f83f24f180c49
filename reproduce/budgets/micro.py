# micro: the CI regression budget. Table 1 with one seed (7 rows + random-init) takes ~4 min on a 2-core
# CPU (target: 2).
# Sizes and throughputs: ../shared/reference/calibration.md (config A, ~1250 img/s for an MAE step).
_base_ = ["./synthscenes_micro.py"]

budget = "micro"

# Pixel targets without per-patch normalisation at small budgets: with norm_pix_loss=True (MAE's default),
# 96 MAE steps leave the CLS token no more useful than a random encoder's (linear probe 18-19 % vs 18.5 %
# random init); unnormalised pixels give 23.1 / 20.7 % over two pretraining seeds (pilot, 2026-11-25). MAE's
# paper reports both targets (Table 1d); the base budgets keep the normalised one.
model = dict(arch="micro", mask_ratio=0.75, norm_pix_loss=False)

pretrain = dict(
    epochs=3,  # passes over data.classification.num_train images (2048 -> 32 steps/epoch at batch 64)
    warmup_epochs=1,
    batch_size=64,  # global; split evenly across processes
    # lr = base_lr * batch_size / 256. The paper's base lr (1.5e-4) assumes ~10^5 steps; at ~100 steps it
    # leaves the model near its initialisation, so small budgets use a larger base lr (pilot-tuned on MAE,
    # then fixed for every method).
    base_lr=6e-3,
    min_lr=0.0,
    weight_decay=0.05,
    betas=(0.9, 0.95),
    crop_scale=(0.2, 1.0),
    hflip=True,
    equalize="epochs",  # or "flops": each method gets steps in inverse proportion to its cost per image
    ema=dict(half_life_fraction=0.1, paper_momentum=0.996),
    precision="auto",  # fp32 on CPU, bf16 autocast on GPU
    checkpoint_interval_epochs=1,
    in_memory=False,
    num_workers=0,
    log_interval=8,
)

# ---- CMT-MAE's CLIP teacher (reproduce/teacher.py): methods/clip_configs/synthclip-<arch>.json, trained
# from scratch on the train captions with open_clip's ClipLoss (AdamW, warm-up + cosine, logit scale clamped
# at 100, as open_clip's training). Pilots (2026-11-25; zero-shot top-1 on val, chance 12.5 %): with the full
# captions a small CLIP matches pairs by colour and background and learns no shapes (12-13 %), also with half
# of them replaced by the main subject's caption. `salient_caption` = the share of pairs captioned with their
# main subject alone ("a ring": the first-named object, colour dropped).
# All of them, micro, 400 steps: zero-shot 30.7 %.
clip_teacher = dict(
    epochs=12,
    batch_size=64,
    lr=2e-3,
    weight_decay=0.1,
    betas=(0.9, 0.98),
    eps=1e-6,
    warmup_fraction=0.1,
    hflip=True,
    salient_caption=1.0,
)

# ---- ImageNet-1K protocols (downstream/in1k): MAE's recipes (base.py), scaled: ~1 s probe, ~3 s fine-tune
# Linear probe on CACHED features: the centre-cropped train images are encoded once (no RandomResizedCrop),
# and the head (BN + Linear, LARS) trains on them; probe seeds and the k-NN reuse the same features. LARS
# moves a weight by ~lr x 0.001 x |w| per step, so the paper's blr 0.1 (7,000 steps at lr 6.4) leaves the head
# at its initialisation in 720 steps: blr 40 was the best of 0.1/1/10/40/100/400 in the pilot (100+ diverge).
linear_probe = dict(
    pool="cls",  # the probe feature: 'cls' (MAE's --cls_token) or 'avg' (pooled patch tokens, --global_pool)
    epochs=90,
    warmup_epochs=10,
    batch_size=256,
    base_lr=40.0,
    min_lr=0.0,
    weight_decay=0.0,
    optimizer="lars",
    momentum=0.9,
    trust_coefficient=0.001,
    augment=False,
    crop_scale=(0.08, 1.0),
    eval_crop_pct=1.0,  # SynthScenes images are drawn at the model's size: no resize/crop
    head_init_std=0.01,
    feature_batch_size=256,
    num_workers=0,
)
# Fine-tune: MAE's recipe (layer decay, drop path, mixup/cutmix, RandAugment, erasing, smoothing), 1 epoch.
finetune = dict(
    epochs=1,
    warmup_epochs=0.2,
    batch_size=64,
    accum_iter=1,
    base_lr=5e-4,
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
    precision="auto",
    num_workers=0,
    checkpoint_interval_epochs=0,  # no checkpoint for a 1-epoch run
    log_interval=8,
)
knn = dict(pool="cls", k=20, temperature=0.07, eval_crop_pct=1.0, feature_batch_size=256, num_workers=0)

# ---- ADE20K semantic segmentation (downstream/ade20k): mmseg's MAE/UperNet protocol (base.py gives each
# paper value and its source) on SynthScenes' ADE20K layout: 512 train / 128 val images at 32 px, 1-3 shapes
# (synthscenes_micro.py), 8 shape classes, background ignored. Scaled: the crop is the image size (the ViT's
# pretraining size), the resize scale keeps the paper's 4:1 box around it, the heads are as wide as the ViT
# (BEiT's rule), the slide stride is 2/3 of the window (341/512). Pilot (2026-11-25, 1 shared thread; mIoU
# random-init / micro MAE seed 0, small shapes): 100 iters x batch 8 at lr 1e-4: 6.2 / 5.2, 3e-4: 4.7 / 4.5,
# 1e-3: 2.8 / 3.8, 3e-3: 2.6 / 1.9; 200 iters at 3e-4: 3.5 / 3.7; large shapes, random-init: 1e-4: 6.1,
# 1e-3: 4.8. Guessing at random gives ~6.7 (1/15): telling 8 shapes apart per pixel takes ~1500 iterations
# (tiny.py), so micro mIoU sits at chance and Table 2 at micro checks the pipeline, not the methods. A run
# takes ~16 s (setup 3, train 11, test 2 s).
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
    iters=100,  # ~11 s of training on one thread
    batch_size=8,
    lr=1e-4,  # the paper's; best of the pilot's 1e-4 / 3e-4 / 1e-3 / 3e-3
    betas=(0.9, 0.999),
    weight_decay=0.05,
    layer_decay=0.65,
    warmup_iters=10,
    warmup_start_factor=1e-6,
    poly_power=1.0,
    min_lr=0.0,
    drop_path=0.1,
    head_channels=64,
    aux_channels=32,
    aux_loss_weight=0.4,
    test_mode="slide",
    slide_stride=21,  # the paper's 341/512 of the window
    precision="auto",
    num_workers=0,
    checkpoint_interval=0,
    log_interval=50,
)

# ---- DAVIS-2017 label propagation (downstream/davis): DINO's procedure (base.py has the paper values and
# explains each key), sizes scaled to SynthScenes' DAVIS clips (4 val clips of 16 frames at 64x64)
# and the patch-4 ViT trained at 32 px. DINO evaluates a 224-px ViT-S/16 on 480-px frames:
# about twice its training resolution, a 30-row grid, a window of ±12 patches (0.4 of the short side).
# Scaled the same way:
davis = dict(
    split="val",
    resolution="480p",  # the folder name SynthScenes writes
    short_side=64,  # twice the training size: a 16x16 patch grid (DINO: 480 px, 30 rows)
    long_side_multiple=16,  # 4 patches, as DINO's 64 px at patch 16 (the square clips are not cropped)
    frame_resize="bilinear",
    mean=(0.485, 0.456, 0.406),
    std=(0.228, 0.224, 0.225),
    pos_embed="interpolate",  # 8x8 -> 16x16
    features="last_block_normed",
    l2_normalize=True,
    temperature=0.1,
    window_radius=6,  # 0.4 of the 16-row grid, as DINO's 12 of 30
    topk=5,  # counts, not sizes: DINO's values
    n_last_frames=7,
    soft_context=True,
    first_frame_downsample="nearest",
    label_upsample="bilinear",
    norm_mask=True,
    output_resize="nearest",
    feature_batch_size=16,
)

# ---- COCO detection + instance segmentation (downstream/coco): ViTDet's Mask R-CNN (base.py gives each paper
# value and its source) on SynthScenes' COCO split (256 train / 64 val images of 64 px, objects 14-42 px).
# Scaled: the crop is the image size; the window is the pretraining token grid (32/4 = 8, as ViTDet's 14 =
# 224/16); anchors at half the mmdet scale (16-256 px) so the smallest objects have one; reduced RPN/RoI
# sampling (calibration.md: mmcv's CPU RoIAlign dominates a step).
# Pilot (2026-11-25, MAE encoder, AP box / AP50 box, downstream/coco/README.md): batch 8 x 100 it, lr 2e-3,
# neck 64: 0.0 / 0.0; batch 4, neck 32, fc 128, rcnn 32: 200 it lr 2e-3: 0.2 / 0.9 (LSJ 0.5-1.5: 0.1 / 0.4);
# 150 it lr 5e-4 / 2e-4: 0.0 / 0.3, 0.0 / 0.0; 400 it lr 5e-4 LSJ 0.5-1.5: 0.7 / 2.6. A step alone costs
# 0.25 s on one thread, so the CI target (~45 s a run) allows ~150 steps: the heads do not learn in that time
# and AP stays near 0. Micro checks the pipeline end to end, not a ranking.
coco = dict(
    protocol="vitdet",
    image_size=64,
    lsj_ratio_range=(0.1, 2.0),
    hflip_prob=0.5,
    pad_value=114,
    window_size=8,
    global_blocks=(1, 3),  # ViTDet: every third block global, the last one included; depth 4 -> 2 of 4
    out_indices=(0, 1, 2, 3),  # fpn_li2021 only: each block of the depth-4 ViT
    drop_path_rate=0.1,
    neck_channels=32,  # thinner neck and heads: their 3x3 convs on every RoI dominate a CPU step
    fc_channels=128,
    anchor_scale=4,
    rpn_sampler_num=64,
    rpn_nms_pre=500,
    rpn_max_per_img=100,
    rcnn_sampler_num=32,
    test_rpn_nms_pre=500,
    test_rpn_max_per_img=100,
    test_max_per_img=20,
    batch_size=4,  # more updates for the same cost: 0.25 s per step on one thread
    lr=2e-3,
    betas=(0.9, 0.999),
    weight_decay=0.1,
    layer_decay=0.7,
    max_iters=150,
    warmup_iters=15,
    warmup_start_factor=0.001,
    lr_steps=(132, 144),  # 88 % and 96 % of the run, as ViTDet's steps
    lr_gamma=0.1,
    precision="auto",
    test_batch_size=8,
    num_workers=0,
    checkpoint_interval=0,
    log_interval=10,
)
