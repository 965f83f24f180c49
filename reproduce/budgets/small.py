# small: a real but affordable run on one GPU: ViT-S/16 on an ImageNet subset (ImageNet-100 or Imagenette) in
# the ImageNet class-folder layout under --data-root, and the real ADE20K, COCO and DAVIS-2017. Every key not
# stated here is the papers' (base.py, with its source). Not piloted on a GPU yet.
_base_ = ["./base.py"]

budget = "small"

data = dict(name="imagenet-subset")

model = dict(arch="vit_small_patch16")

# 200 epochs at batch 512 on one GPU; warm-up the paper's 1/20 of the run; a checkpoint every 10 epochs.
pretrain = dict(epochs=200, warmup_epochs=20, batch_size=512, checkpoint_interval_epochs=10, num_workers=8)

# ---- ImageNet-1K protocols on the subset: MAE's recipes with batches reduced for one GPU (lr = base_lr x
# batch / 256). Layer decay 0.75 is RC-MAE's ViT-S value.
linear_probe = dict(batch_size=4096, num_workers=8)
finetune = dict(accum_iter=4, layer_decay=0.75, num_workers=8)  # 256 images per step x 4 = batch 1024
knn = dict(num_workers=8)

# ---- ADE20K: mmseg's short standard schedule (schedule_40k; the paper's is 160k) with the paper's warm-up;
# the global batch stays 16 (one GPU x 16 images, bf16). UPerHead as wide as the ViT (BEiT's rule).
ade20k = dict(iters=40000, head_channels=384, checkpoint_interval=4000, num_workers=8)

# ---- DAVIS-2017: DINO's own ViT-S/16 setting, which base.py already is.

# ---- COCO: ViTDet for ViT-S/16 (the same depth as ViT-B, so the same global blocks) at half its resolution
# (a 32x32 token grid) and a 1x-length schedule (~12 epochs of train2017 at batch 16). The lr follows ViTDet's
# linear rule (1e-4 at batch 64); the steps at 88 % and 96 % of the run, as ViTDet's.
_COCO_ITERS = 90000
coco = dict(
    image_size=512,
    batch_size=16,
    lr=1e-4 * 16 / 64,
    max_iters=_COCO_ITERS,
    lr_steps=(round(0.88 * _COCO_ITERS), round(0.96 * _COCO_ITERS)),
    test_batch_size=4,
)
