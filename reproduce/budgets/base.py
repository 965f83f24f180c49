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
    in_memory=False,  # read image files (True: decode the split once and crop batches in memory; micro/tiny)
    num_workers=10,
    log_interval=50,
)

# ---- ImageNet-1K protocols (downstream/in1k): MAE's official recipes, facebookresearch/mae@efb2a80 ----
# Linear probe (main_linprobe.py, FINETUNE.md): LARS, lr = base_lr x batch / 256, CLS token after the final
# norm, BatchNorm1d(affine=False, eps=1e-6) + Linear (trunc_normal std 0.01), final-epoch top-1.
linear_probe = dict(
    pool="cls",  # the probe feature: 'cls' (MAE's --cls_token) or 'avg' (pooled patch tokens, --global_pool)
    epochs=90,
    warmup_epochs=10,
    batch_size=16384,  # global
    base_lr=0.1,
    min_lr=0.0,
    weight_decay=0.0,
    optimizer="lars",  # 'sgd' is HPM's probe (recipe='hpm')
    momentum=0.9,
    trust_coefficient=0.001,
    augment=True,  # RandomResizedCrop + flip each step; False: centre-crop features encoded once, cached
    crop_scale=(0.08, 1.0),
    eval_crop_pct=224 / 256,  # Resize 256 -> CenterCrop 224
    head_init_std=0.01,
    feature_batch_size=512,  # encoder forward chunk (no grad)
    num_workers=10,
)
# End-to-end fine-tune, ViT-B (main_finetune.py, FINETUNE.md): AdamW, layer decay, mixup/cutmix, RandAugment.
finetune = dict(
    epochs=100,
    warmup_epochs=5,
    batch_size=1024,  # effective: processes x per-step batch x accum_iter
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
    eval_crop_pct=224 / 256,
    head_init_std=2e-5,
    clip_grad=None,
    precision="auto",  # bf16 autocast on GPU, fp32 on CPU
    num_workers=10,
    checkpoint_interval_epochs=10,
    log_interval=50,
)
# Weighted k-NN on L2-normalised CLS features (DINO eval_knn.py): train split = bank, val = queries.
knn = dict(
    pool="cls", k=20, temperature=0.07, eval_crop_pct=224 / 256, feature_batch_size=512, num_workers=10
)

# ---- ADE20K semantic segmentation (downstream/ade20k): UperNet on four evenly spaced blocks through
# mmsegmentation, MAE's protocol as mmseg ships it:
# configs/mae/mae-base_upernet_8xb2-amp-160k_ade20k-512x512.py (mmseg 1.2.2; it inherits
# _base_/datasets/ade20k.py and _base_/schedules/schedule_160k.py), the values ColorMAE's ADE20K benchmark
# config uses too (carlosh93/ColorMAE, benchmarks/). MAE's paper (arXiv 2111.06377, appendix A.4) ran BEiT's
# segmentation code: UperNet, 100 epochs (= 160k iterations) at batch 16, 512 px, relative position bias; it
# searched the lr per entry.
# downstream/ade20k/README.md gives each value's source and what our protocol changes.
ade20k = dict(
    dataset="CheckedADE20KDataset",  # ADEChallengeData2016 (150 classes): --data-root DIR/ade20k
    train_split="training",  # images/training + annotations/training (20,210 images)
    val_split="validation",  # 2,000 images
    crop_size=512,  # crop_size = (512, 512); also the ViT's input size (position embedding interpolated)
    scale=(2048, 512),  # RandomResize(scale=(2048, 512), keep_ratio) in training, Resize(same) at test
    ratio_range=(0.5, 2.0),  # RandomResize ratio_range
    cat_max_ratio=0.75,  # RandomCrop: retry crops where one class covers over 75 %
    flip_prob=0.5,  # RandomFlip
    photometric_distortion=True,  # PhotoMetricDistortion
    iters=160000,  # schedule_160k: IterBasedTrainLoop max_iters
    batch_size=16,  # global: 8 GPUs x 2 images (the config's "8xb2")
    lr=1e-4,  # AdamW
    betas=(0.9, 0.999),
    weight_decay=0.05,
    layer_decay=0.65,  # layer_decay_rate 0.65 over 12 blocks
    warmup_iters=1500,  # LinearLR(start_factor=1e-6, end=1500)
    warmup_start_factor=1e-6,
    poly_power=1.0,  # PolyLR(power=1.0, eta_min=0.0, begin=1500, end=160000)
    min_lr=0.0,
    drop_path=0.1,  # drop_path_rate
    head_channels=768,  # UPerHead channels (BEiT's rule: the ViT's width)
    aux_channels=256,  # FCNHead channels on the third map (upernet_mae.py)
    aux_loss_weight=0.4,  # FCNHead loss weight
    test_mode="slide",  # test_cfg mode='slide', crop (512, 512)
    slide_stride=341,  # test_cfg stride (341, 341), as mmseg 1.2.2's file reads (not 256, as once quoted)
    precision="auto",  # the config's "amp" (MAE/BEiT: fp16); here bf16 autocast on GPU, fp32 on CPU
    num_workers=4,
    checkpoint_interval=16000,  # CheckpointHook interval
    log_interval=50,
)

# ---- DAVIS-2017 label propagation (downstream/davis): DINO's eval_video_segmentation.py, detail for detail.
# downstream/davis/README.md gives the source line of each value. Frozen encoder, no training, no randomness.
davis = dict(
    split="val",  # DINO reads ImageSets/2017/val.txt; the toolkit evaluates the same split
    resolution="480p",  # JPEGImages/480p, Annotations/480p
    short_side=480,  # frames resized so the short side is 480 px (read_frame's scale_size=[480])
    long_side_multiple=64,  # the long side keeps the aspect ratio, floored to a multiple of 64 (854 -> 832)
    frame_resize="bilinear",  # cv2.resize's default interpolation, on the uint8 frame
    mean=(0.485, 0.456, 0.406),  # DINO's color_normalize
    std=(0.228, 0.224, 0.225),  # DINO's constants: 0.228, not ImageNet's 0.229
    pos_embed="interpolate",  # position embedding resampled to the frame grid (declared loader transform)
    features="last_block_normed",  # last block after the final norm, CLS dropped (get_intermediate_layers)
    l2_normalize=True,  # cosine affinities
    temperature=0.1,  # affinity exp(cos / 0.1)
    window_radius=12,  # sources within ±12 patches in row and column (size_mask_neighborhood)
    topk=5,  # per target patch, the 5 largest affinities over all context frames survive
    n_last_frames=7,  # context: the first frame + the 7 most recent frames
    soft_context=True,  # recent frames enter the context with their soft (not argmaxed) labels
    first_frame_downsample="nearest",  # first annotation to the patch grid with PIL NEAREST (read_seg)
    label_upsample="bilinear",  # soft labels upsampled x patch size, align_corners=False
    norm_mask=True,  # per-channel min-max normalisation before the argmax (norm_mask)
    output_resize="nearest",  # ids back to the original frame size with PIL NEAREST
    feature_batch_size=8,  # frames per encoder forward (DINO: 1; results do not depend on it)
)

# ---- COCO detection + instance segmentation (downstream/coco): Mask R-CNN on the shared ViT. The default is
# ViTDet as ColorMAE runs it (its benchmarks/object_detection configs = mmdet 3.2.0 projects/ViTDet
# `vitdet_mask-rcnn_vit-b-mae_lsj-100e.py` + `lsj-100e_coco-instance.py`) and as HPM's README points to
# (Detectron2 ViTDet). `protocol="fpn_li2021"` is MAE's and RC-MAE's Mask R-CNN + FPN on four blocks (Li et
# al. 2021); MAE searched lr, wd, drop path and epochs per entry and did not publish them, so that option
# keeps ViTDet's schedule. downstream/coco/README.md gives every value's source and the fidelity table.
coco = dict(
    protocol="vitdet",  # or "fpn_li2021" (reproduce/table3.py --protocol)
    image_size=1024,  # LSJ crop and test size (ViTDet: image_size = (1024, 1024))
    lsj_ratio_range=(0.1, 2.0),  # RandomResize ratio of the crop (ViTDet: large-scale jitter 0.1-2.0)
    hflip_prob=0.5,  # RandomFlip (ViTDet)
    pad_value=114,  # Pad to the crop with 114 (ViTDet's train and test pipelines)
    window_size=14,  # window attention, in tokens: the pretraining grid 224/16 (ViTDet window_size=14)
    global_blocks=(2, 5, 8, 11),  # blocks with global attention (ViTDet: window_block_indexes = the others)
    out_indices=(2, 5, 8, 11),  # fpn_li2021 only: last block of each quarter (MAE A.3: "4 subsets")
    drop_path_rate=0.1,  # ViTDet backbone drop_path_rate
    neck_channels=256,  # SimpleFPN / FPN out_channels, also the RPN, box and mask heads' conv channels
    fc_channels=1024,  # Shared4Conv1FCBBoxHead fc_out_channels (mmdet default)
    anchor_scale=8,  # AnchorGenerator scales=[8] on strides 4-64 (mmdet Mask R-CNN base)
    rpn_sampler_num=256,  # mmdet Mask R-CNN base train_cfg.rpn.sampler.num
    rpn_nms_pre=2000,  # train_cfg.rpn_proposal.nms_pre
    rpn_max_per_img=1000,  # train_cfg.rpn_proposal.max_per_img
    rcnn_sampler_num=512,  # train_cfg.rcnn.sampler.num
    test_rpn_nms_pre=1000,  # test_cfg.rpn.nms_pre
    test_rpn_max_per_img=1000,  # test_cfg.rpn.max_per_img
    test_max_per_img=100,  # test_cfg.rcnn.max_per_img (COCO's 100 detections per image)
    batch_size=64,  # global: 4/GPU x 16 GPUs (ViTDet; ColorMAE's FINETUNE.md: 16/GPU x 4 GPUs)
    lr=1e-4,  # AdamW lr at batch 64 (ViTDet, auto_scale_lr base_batch_size=64)
    betas=(0.9, 0.999),
    weight_decay=0.1,
    layer_decay=0.7,  # ViTDet decay_rate 0.7 (here through downstream/optim.py on timm names)
    max_iters=184375,  # "100 ep = 184375 iters * 64 images/iter / 118000 images/ep" (ViTDet)
    warmup_iters=250,  # LinearLR from start_factor 0.001 over 250 iterations (ViTDet)
    warmup_start_factor=0.001,
    lr_steps=(163889, 177546),  # MultiStepLR at 88 and 96 epochs (ViTDet)
    lr_gamma=0.1,
    precision="auto",  # AMP on GPU (ViTDet's AmpOptimWrapper), fp32 on CPU
    test_batch_size=1,  # ViTDet val_dataloader batch_size (results do not depend on it: fixed-size pad)
    num_workers=8,  # ViTDet train_dataloader num_workers
    checkpoint_interval=5000,  # ViTDet CheckpointHook interval (0: no checkpoints)
    log_interval=50,
)
