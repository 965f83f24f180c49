# micro: the CI regression budget. The whole pipeline runs in about 2-3 minutes on a 2-core CPU.
# Sizes and throughputs: ../shared/reference/calibration.md (config A, ~1250 img/s for an MAE step).
_base_ = ["./synthscenes_micro.py"]

budget = "micro"

model = dict(arch="micro", mask_ratio=0.75, norm_pix_loss=True)

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
    num_workers=0,
    log_interval=8,
)
