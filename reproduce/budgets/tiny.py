# tiny: the default budget of every reproduce/tableN.py. Table 1 (7 rows + random-init) takes ~39 min on a
# 2-core CPU (target: 15; README.md, Status, says where the time goes).
# Sizes and throughputs: ../shared/reference/calibration.md (config B, ~420 img/s for an MAE step).
_base_ = ["./synthscenes_tiny.py"]

budget = "tiny"

# Pixel targets without per-patch normalisation at small budgets (see micro.py): on tiny, MAE's CLS probe
# after 3 epochs is 19.8 % with norm_pix_loss=True, below the random-init encoder's 22.5 %, and 24.1 / 24.5 %
# without it (two pretraining seeds, 3 probe seeds each, std <= 0.4; pilot, 2026-11-25).
model = dict(arch="tiny", mask_ratio=0.75, norm_pix_loss=False)

pretrain = dict(
    epochs=3,  # 8192 images -> 128 steps/epoch at batch 64
    warmup_epochs=1,
    batch_size=64,
    base_lr=6e-3,  # see micro.py for why small budgets use a larger base lr
    min_lr=0.0,
    weight_decay=0.05,
    betas=(0.9, 0.95),
    crop_scale=(0.2, 1.0),
    hflip=True,
    equalize="epochs",
    ema=dict(half_life_fraction=0.1, paper_momentum=0.996),
    precision="auto",
    checkpoint_interval_epochs=1,
    num_workers=2,
    log_interval=16,
)

# ---- CMT-MAE's CLIP teacher (reproduce/teacher.py): methods/clip_configs/synthclip-<arch>.json, trained
# from scratch on the train captions with open_clip's ClipLoss (AdamW, warm-up + cosine, logit scale clamped
# at 100, as open_clip's training). Pilots (2026-11-25; zero-shot top-1 on val, chance 12.5 %): with the full
# captions a small CLIP matches pairs by colour and background and learns no shapes (12-13 %), also with half
# of them replaced by the main subject's caption. `salient_caption` = the share of pairs captioned with their
# main subject alone ("a ring": the first-named object, colour dropped).
# All of them, tiny, 512 steps: 27.3 % and rising.
clip_teacher = dict(
    epochs=6,
    batch_size=64,
    lr=2e-3,
    weight_decay=0.1,
    betas=(0.9, 0.98),
    eps=1e-6,
    warmup_fraction=0.1,
    hflip=True,
    salient_caption=1.0,
)

# ---- ImageNet-1K protocols (downstream/in1k): MAE's recipes (base.py), scaled: ~13 s probe, ~27 s fine-tune
# Linear probe on CACHED centre-crop features (see micro.py), 3 seeds share one encoder pass; blr as micro.py.
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
    eval_crop_pct=1.0,
    head_init_std=0.01,
    feature_batch_size=256,
    num_workers=2,
)
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
    num_workers=2,
    checkpoint_interval_epochs=0,
    log_interval=16,
)
knn = dict(pool="cls", k=20, temperature=0.07, eval_crop_pct=1.0, feature_batch_size=256, num_workers=2)

# ---- ADE20K semantic segmentation (downstream/ade20k): mmseg's MAE/UperNet protocol (base.py gives each
# paper value and its source) on SynthScenes' ADE20K layout: 2048 train / 512 val images at 64 px, 1-3 shapes
# of 13-51 px (synthscenes_tiny.py), 8 shape classes, background ignored. Scaled as micro.py (crop = image
# size, 4:1 resize box, heads as wide as the ViT, stride 2/3 of the window). Guessing classes at random gives
# ~6.7 mIoU (1/15). Pilot (2026-11-25, 1 thread; mIoU of random-init / Table 1's tiny MAE / CMT-MAE
# teacher-only, seed 0; downstream/ade20k/README.md): 300 iters at lr 1e-4-1e-3, small shapes: 6.3-6.9 for
# every encoder (chance); 1500 iters at lr 1e-3: small shapes 9.8 (random-init), large shapes 13.0 / 13.2 /
# 12.3. The task is learnt, slowly; the tiny encoders (384 pretraining steps) do not separate from
# random-init. A run takes ~10 min on one thread.
ade20k = dict(
    dataset="SynthScenesSegDataset",
    train_split="training",
    val_split="validation",
    crop_size=64,
    scale=(256, 64),
    ratio_range=(0.5, 2.0),
    cat_max_ratio=0.75,
    flip_prob=0.5,
    photometric_distortion=True,
    iters=1500,
    batch_size=8,
    lr=1e-3,  # pilot (above)
    betas=(0.9, 0.999),
    weight_decay=0.05,
    layer_decay=0.65,
    warmup_iters=50,
    warmup_start_factor=1e-6,
    poly_power=1.0,
    min_lr=0.0,
    drop_path=0.1,
    head_channels=128,
    aux_channels=64,
    aux_loss_weight=0.4,
    test_mode="slide",
    slide_stride=43,  # the paper's 341/512 of the window
    precision="auto",
    num_workers=2,
    checkpoint_interval=0,
    log_interval=50,
)

# ---- DAVIS-2017 label propagation (downstream/davis): DINO's procedure (base.py has the paper values and
# explains each key), sizes scaled to SynthScenes' DAVIS clips (8 val clips of 16 frames at 64x64)
# and the patch-8 ViT trained at 64 px. DINO evaluates a 224-px ViT-S/16 on 480-px frames:
# about twice its training resolution, a 30-row grid, a window of ±12 patches (0.4 of the short side).
# Scaled the same way:
davis = dict(
    split="val",
    resolution="480p",  # the folder name SynthScenes writes
    short_side=128,  # twice the training size: a 16x16 patch grid (DINO: 480 px, 30 rows)
    long_side_multiple=32,  # 4 patches, as DINO's 64 px at patch 16 (the square clips are not cropped)
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
# value and its source) on SynthScenes' COCO split (1024 train / 256 val images of 128 px, objects 36-82 px).
# Scaled: the crop is the image size; the window is the pretraining token grid (64/8 = 8, as ViTDet's 14 =
# 224/16); mmdet's anchors (32-512 px); reduced RPN/RoI sampling (calibration.md: mmcv's CPU RoIAlign
# dominates a step).
# Pilot (2026-11-25, AP box / AP50 box, MAE vs random-init encoder of the tiny Table 1 run; README.md):
# 300 it x batch 4, lr 2e-3: 0.2 / 0.7 vs 0.2 / 0.8; 400 it, lr 5e-4, LSJ 0.5-1.5: 0.3 / 1.4 vs 0.5 / 1.9. The
# heads have not learnt at these lengths (AP ~0 for both encoders): MAE does not beat random-init yet; a
# longer tiny schedule is needed (~1.5 s a step on the shared CPU: thousands of steps take tens of minutes).
coco = dict(
    protocol="vitdet",
    image_size=128,
    lsj_ratio_range=(0.1, 2.0),
    hflip_prob=0.5,
    pad_value=114,
    window_size=8,
    global_blocks=(1, 3),  # ViTDet: every third block global, the last one included; depth 4 -> 2 of 4
    out_indices=(0, 1, 2, 3),  # fpn_li2021 only: each block of the depth-4 ViT
    drop_path_rate=0.1,
    neck_channels=64,  # thinner neck and heads: their 3x3 convs on every RoI dominate a CPU step
    fc_channels=256,
    anchor_scale=8,
    rpn_sampler_num=64,
    rpn_nms_pre=500,
    rpn_max_per_img=100,
    rcnn_sampler_num=32,
    test_rpn_nms_pre=500,
    test_rpn_max_per_img=100,
    test_max_per_img=20,
    batch_size=4,
    lr=5e-4,
    betas=(0.9, 0.999),
    weight_decay=0.1,
    layer_decay=0.7,
    max_iters=400,
    warmup_iters=40,
    warmup_start_factor=0.001,
    lr_steps=(352, 384),  # 88 % and 96 % of the run, as ViTDet's steps
    lr_gamma=0.1,
    precision="auto",
    test_batch_size=8,
    num_workers=0,
    checkpoint_interval=0,
    log_interval=40,
)
