# base: the papers' setting (MAE, facebookresearch/mae PRETRAIN.md): ViT-B/16 on ImageNet-1K at 224 px,
# batch 4096, blr 1.5e-4, AdamW (0.9, 0.95), wd 0.05, 40 warm-up epochs, mixed precision. Epochs are set by
# the variants base-300e.py, base-800e.py and base-1600e.py; this file alone means 800 epochs.
# Multi-GPU through mmengine's launchers: torchrun ... reproduce/pretrain.py --launcher pytorch (or slurm).
budget = "base"

data = dict(
    name="imagenet-1k",
    root=None,  # --data-root DIR: DIR/imagenet/{train,val}/<class>/*.JPEG (README.md, "Real datasets")
    seed=0,
    imagenet=dict(image_size=224),
)

model = dict(arch="vit_base_patch16", mask_ratio=0.75, norm_pix_loss=True)

pretrain = dict(
    epochs=800,
    warmup_epochs=40,
    batch_size=4096,
    base_lr=1.5e-4,
    min_lr=0.0,
    weight_decay=0.05,
    betas=(0.9, 0.95),
    crop_scale=(0.2, 1.0),
    hflip=True,
    equalize="epochs",
    ema=dict(half_life_fraction=0.1, paper_momentum=0.996),
    precision="auto",
    checkpoint_interval_epochs=20,
    num_workers=10,
    log_interval=50,
)
