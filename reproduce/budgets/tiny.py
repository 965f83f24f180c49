# tiny: the default budget of every reproduce/tableN.py and of `make reproduce`. Every key not stated here is
# the papers' (base.py, each with its source); what follows is what a 2-core CPU needs, each with the pilot
# that chose it (reproduce/budgets/README.md lists every pilot run: setting, seeds, numbers, wall time).
_base_ = ["./base.py"]

budget = "tiny"

# The image, patch and width the pilots chose (methods/backbone.py ARCHS['tiny']): at 32 px no pretraining
# length a CPU affords gave the linear probe any signal (30 epochs: MAE 23.4 vs random-init 23.8); at 64 px
# with patch 8 (the same 8x8 token grid, shapes 4x larger) 30 epochs gave +8.5 points.
_IMG, _PATCH, _WIDTH = 64, 8, 64

# SynthScenes at 64 px. The class object is drawn larger (radius 0.30-0.45 of the side, MAE's default scene:
# 0.22-0.34) with one distractor fewer (2-3 objects): at 10 epochs the probe gap over random-init went from
# +2.8 to +5.9 points (pilots D, G2). ADE20K, COCO and DAVIS keep their sizes.
data = dict(
    _delete_=True,
    name="synthscenes-tiny",
    root="data/synthscenes-tiny",  # relative to the repository root
    seed=0,
    imagenet=dict(image_size=_IMG, train=8192, val=2048, objects=(2, 3), largest_radius=(0.3, 0.45)),
    # UperNet at 64 px. 1-3 objects of radius 0.2-0.4 of the side: at the default 0.1-0.3 the smallest span 2
    # patches, too few to read a shape from (pilot: downstream/ade20k/README.md).
    ade20k=dict(image_size=_IMG, train=2048, val=512, objects=(1, 3), radius=(0.2, 0.4)),
    # Mask R-CNN at 128 px with reduced sampling; objects 36-82 px across.
    coco=dict(image_size=2 * _IMG, train=1024, val=256, objects=(1, 4)),
    # Label propagation: 8 val clips x 16 frames.
    davis=dict(image_size=_IMG, frames=16, train=4, val=8, objects=(2, 3)),
)

# Unnormalised pixel targets: with norm_pix_loss=True the probe after 10 epochs was 23.2 against 24.4 (pilot
# E).
model = dict(arch="tiny", norm_pix_loss=False)

# 15 epochs of 8192 images (1920 steps at batch 64, ~150 s for MAE on 2 threads): with 3 seeds, MAE's probe
# clears random-init by 10.0 points and its fine-tune by 6.5 (pilot H). The base lr is 40x the paper's: at a
# few thousand steps the paper's leaves the model near its initialisation (micro/tiny pilots, 2026-11-25).
# The decoded images stay in memory and each batch is cropped at once (pretrain.in_memory).
pretrain = dict(
    epochs=15,
    warmup_epochs=1,
    batch_size=64,
    base_lr=6e-3,
    checkpoint_interval_epochs=5,
    in_memory=True,
    num_workers=0,
    log_interval=32,
)

# ---- CMT-MAE's CLIP teacher (reproduce/clip_teacher_training.py): methods/clip_configs/synthclip-tiny.json,
# trained from scratch on the train captions with open_clip's ClipLoss (AdamW, warm-up + cosine, logit scale
# clamped at 100, as open_clip's training). Pilots (2026-11-25; zero-shot top-1 on val, chance 12.5 %): with
# the full captions a small CLIP matches pairs by colour and background and learns no shapes (12-13 %), also
# with half of them replaced by the main subject's caption. `salient_caption` = the share of pairs captioned
# with their main subject alone ("a ring": the first-named object, colour dropped). All of them, 512 steps:
# 27.3 % and rising.
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

# ---- ImageNet-1K protocols (downstream/in1k): MAE's recipes (base.py), scaled. Linear probe on CACHED
# centre-crop features of the pooled patch tokens (pool='avg', MAE's --global_pool): MAE's loss never reaches
# the CLS token, and at this length the pooled tokens carry more (pilot H: MAE 33.1 against 27.7 on the CLS
# token; random-init 23.1 and 23.2). LARS moves a weight by ~lr x 0.001 x |w| per step, so the paper's blr 0.1
# leaves the head at its initialisation in 2880 steps: blr 40 (best of 0.1-400 on micro; 100 and above
# diverge). 300 epochs instead of 90 changed no number by more than 0.7 (pilot L).
linear_probe = dict(
    pool="avg",
    batch_size=256,
    base_lr=40.0,
    augment=False,
    eval_crop_pct=1.0,  # SynthScenes images are drawn at the model's size: no resize/crop
    feature_batch_size=256,
    num_workers=2,
)
# Fine-tune: 5 epochs that learn. With MAE's full regularisation (mixup 0.8, cutmix 1.0, RandAugment, erasing)
# and RandomResizedCrop down to 8 % of the image (which crops the class object out) the loss stayed at ln 8
# for 10 epochs from any initialisation (pilot B). Crops of 80-100 %, no mixup/cutmix/RandAugment/erasing,
# layer decay 0.75 (depth 4) and blr 4e-3: random-init reaches 36.2 % (chance 12.5), MAE 42.7 (pilot H).
finetune = dict(
    epochs=5,
    warmup_epochs=1,
    batch_size=64,
    base_lr=4e-3,
    layer_decay=0.75,
    mixup=0.0,
    cutmix=0.0,
    auto_augment=None,
    reprob=0.0,
    crop_scale=(0.8, 1.0),
    eval_crop_pct=1.0,
    num_workers=0,
    checkpoint_interval_epochs=0,
    log_interval=32,
)
knn = dict(pool="avg", eval_crop_pct=1.0, feature_batch_size=256, num_workers=2)

# ---- ADE20K semantic segmentation (downstream/ade20k): mmseg's MAE/UperNet protocol on SynthScenes' ADE20K
# layout (2048 train / 512 val at 64 px, 8 shape classes, background ignored). Scaled: the crop is the
# pretraining size, the resize box keeps the paper's 4:1 around it, the heads are as wide as the ViT (BEiT's
# rule), the slide stride is 2/3 of the window (341/512). Guessing classes at random gives ~6.7 mIoU (1/15).
# Pilot (2026-11-25, 1 thread; mIoU of random-init / the tiny MAE then / CMT-MAE teacher-only, seed 0;
# downstream/ade20k/README.md): 300 iters at lr 1e-4-1e-3, small shapes: 6.3-6.9 for every encoder (chance);
# 1500 iters at lr 1e-3: small shapes 9.8 (random-init), large shapes 13.0 / 13.2 / 12.3. Issue 23
# (2026-12-06, 3 pretraining seeds, today's tiny MAE): 1500 iters gave MAE 13.7 +- 0.4 vs random-init
# 11.6 +- 0.2 (+2.0); 3000 iters: MAE 22.2 +- 1.2 vs random-init 15.3 +- 0.1 (+6.9, 6.0 sigma). A run takes
# ~4 min on 2 threads.
ade20k = dict(
    dataset="SynthScenesSegDataset",
    crop_size=_IMG,
    scale=(4 * _IMG, _IMG),
    iters=3000,
    batch_size=8,
    lr=1e-3,
    warmup_iters=50,
    head_channels=_WIDTH,
    aux_channels=_WIDTH // 2,
    slide_stride=round(_IMG * 2 / 3),
    num_workers=2,
    checkpoint_interval=0,
)

# ---- DAVIS-2017 label propagation (downstream/davis): DINO's procedure on SynthScenes' clips (8 val clips of
# 16 frames at 64x64). DINO evaluates a 224-px ViT-S/16 on 480-px frames: about twice its training resolution,
# a 30-row grid, a window of +-12 patches (0.4 of the short side). Scaled the same way:
_DAVIS_ROWS = 2 * _IMG // _PATCH  # frames at twice the training size: a 16-row patch grid
davis = dict(
    short_side=2 * _IMG,
    long_side_multiple=4
    * _PATCH,  # 4 patches, as DINO's 64 px at patch 16 (the square clips are not cropped)
    window_radius=round(0.4 * _DAVIS_ROWS),  # DINO's 12 of 30 rows
    feature_batch_size=16,
)

# ---- COCO detection + instance segmentation (downstream/coco): ViTDet's Mask R-CNN on SynthScenes' COCO
# split (1024 train / 256 val images of 128 px, objects 36-82 px). Scaled: the crop is the image size; the
# window is the pretraining token grid (64/8 = 8, as ViTDet's 14 = 224/16); every third block global as ViTDet
# (depth 4: blocks 1 and 3); thinner neck and heads (their 3x3 convs on every RoI dominate a CPU step);
# reduced RPN/RoI sampling. Pilot (2026-11-25, AP box / AP50 box of MAE vs random-init,
# downstream/coco/README.md): 300 it x batch 4, lr 2e-3: 0.2 / 0.7 vs 0.2 / 0.8; 400 it, lr 5e-4, LSJ 0.5-1.5:
# 0.3 / 1.4 vs 0.5 / 1.9. The heads have not learnt at these lengths (~1.5 s a step on the shared CPU).
_COCO_ITERS = 400
coco = dict(
    image_size=2 * _IMG,
    window_size=_IMG // _PATCH,
    global_blocks=(1, 3),
    out_indices=(0, 1, 2, 3),  # fpn_li2021 only: each block of the depth-4 ViT
    neck_channels=64,
    fc_channels=256,
    rpn_sampler_num=64,
    rpn_nms_pre=500,
    rpn_max_per_img=100,
    rcnn_sampler_num=32,
    test_rpn_nms_pre=500,
    test_rpn_max_per_img=100,
    test_max_per_img=20,
    batch_size=4,
    lr=5e-4,
    max_iters=_COCO_ITERS,
    warmup_iters=_COCO_ITERS // 10,
    lr_steps=(round(0.88 * _COCO_ITERS), round(0.96 * _COCO_ITERS)),  # as ViTDet's steps
    test_batch_size=8,
    num_workers=0,
    checkpoint_interval=0,
    log_interval=40,
)
