# micro: the CI regression budget (tests/test_regression.py against tables/recorded/micro.csv). tiny's ViT,
# images and recipes (tiny.py), shortened so that CI re-runs Tables 1-5 with one seed, and still long enough
# that the recorded linear probe tells MAE from an untrained encoder by more than 3 sigma (pilot M4). The
# dense protocols keep the smaller images they had (ADE20K 32 px, COCO 64 px): at micro they check the
# pipeline.
_base_ = ["./tiny.py"]

budget = "micro"

data = dict(
    name="synthscenes-micro",
    root="data/synthscenes-micro",
    ade20k=dict(image_size=32, train=512, val=128),
    coco=dict(image_size=64, train=256, val=64),
    davis=dict(train=2, val=4),
)

# 6 epochs of tiny's 8192 images (768 steps, ~70 s for MAE on 2 threads). At 5 epochs, with 3 seeds, the probe
# read MAE at 27.3 +- 1.1 against random-init's 23.1 +- 0.6 (pilots M4, H): beyond 3 sigma, with one epoch
# more for margin. At 10 epochs of 2048 images, random-init's spread alone was 2.3 points (pilot M3).
pretrain = dict(epochs=6, checkpoint_interval_epochs=1, log_interval=16)

# CMT-MAE's teacher: tiny's recipe, 3 epochs (384 steps; tiny: 768).
clip_teacher = dict(epochs=3)

# A 1-epoch fine-tune: CI's check that the protocol runs and does not drift, not a measurement (tiny's 5
# epochs learn: pilot H).
finetune = dict(epochs=1, warmup_epochs=0.2, log_interval=16)

# ---- ADE20K on 32-px images (512 train / 128 val): the crop is the image, 100 iterations (~16 s a run). The
# pilot of the earlier micro (2026-11-25, downstream/ade20k/README.md) found micro mIoU at chance (~6.7) for
# any encoder and lr: Table 2 at micro checks the pipeline, not the methods.
ade20k = dict(
    crop_size=32,
    scale=(4 * 32, 32),
    iters=100,
    lr=1e-4,
    warmup_iters=10,
    slide_stride=round(32 * 2 / 3),
    num_workers=0,
)

# ---- COCO on 64-px images (256 train / 64 val), 150 iterations (~45 s a run): anchors at half mmdet's scale
# so the smallest objects have one, a thinner neck and heads. AP stays near 0 (downstream/coco/README.md):
# Table 3 at micro checks the pipeline.
_COCO_ITERS = 150
coco = dict(
    image_size=64,
    window_size=64 // _base_._PATCH,  # tiny's patch: the window is the token grid
    anchor_scale=4,
    neck_channels=32,
    fc_channels=128,
    lr=2e-3,
    max_iters=_COCO_ITERS,
    warmup_iters=_COCO_ITERS // 10,
    lr_steps=(round(0.88 * _COCO_ITERS), round(0.96 * _COCO_ITERS)),
    log_interval=10,
)
