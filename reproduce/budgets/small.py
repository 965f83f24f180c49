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
