# tiny: the default budget of every reproduce/tableN.py; Table 1 in about 15 minutes on a 2-core CPU.
# Sizes and throughputs: ../shared/reference/calibration.md (config B, ~420 img/s for an MAE step).
_base_ = ["./synthscenes_tiny.py"]

budget = "tiny"

model = dict(arch="tiny", mask_ratio=0.75, norm_pix_loss=True)

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
