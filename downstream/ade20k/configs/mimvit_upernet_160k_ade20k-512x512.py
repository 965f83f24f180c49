# UperNet on the shared ViT for ADE20K: mmseg's MAE config (BEiT's protocol, as MAE's paper ran it), with only
# what our encoder changes. Every value not set here is mmseg's (paper scale: 512x512 crops, 160k iterations,
# AdamW lr 1e-4, layer decay 0.65, 8 GPUs x 2 images, slide inference at stride 341).
# downstream/ade20k/protocol.py loads this file and writes the budget's `ade20k` section into it (crop,
# schedule, batch, dataset, head widths); at the base budget they equal mmseg's (tests/test_ade20k.py).
_base_ = ["mmseg::mae/mae-base_upernet_8xb2-amp-160k_ade20k-512x512.py"]

custom_imports = dict(
    imports=["downstream.mm_backbone", "downstream.optim", "downstream.datasets.ade20k"],
    allow_failed_imports=False,
)

model = dict(
    # mmseg's EncoderDecoder would hand a `pretrained` path to the backbone; ours loads its own checkpoint,
    # strictly (the encoder file named by backbone.checkpoint).
    pretrained=None,
    backbone=dict(
        _delete_=True,  # mmseg's `MAE` backbone (BEiT-style, relative position bias, strict=False loading)
        type="MIMViT",
        arch=None,  # from the encoder file's metadata
        checkpoint=None,  # the encoder file; None = MAE's random initialisation
        img_size=(512, 512),  # the crop: the position embedding is interpolated to it by the strict loader
        out_indices=None,  # four evenly spaced blocks: [3, 5, 7, 11] at depth 12, as mmseg's MAE config
        pyramid="multilevel",  # the four blocks rescaled to strides 4/8/16/32 inside the adapter
        drop_path_rate=0.1,
    ),
    # No Feature2Pyramid neck: mmseg's only accepts rescales 4/2/1/0.5/0.25, which give strides 4-32 for patch
    # 16 and 8 only; the micro ViT has patch 4 and needs 1/0.5/0.25/0.125. The adapter derives the rescales
    # from the patch size (BEiT's deconv / identity / max-pool ops) and hands UperNet the four maps directly.
    neck=None,
)

# MAE's layer-wise lr decay keyed on timm's `blocks.N` names (downstream/optim.py). mmseg's
# LayerDecayOptimizerConstructor keys on BEiT's `layers.N` names and would silently give our blocks one lr.
optim_wrapper = dict(
    _delete_=True,
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor="LayerDecayOptimWrapperConstructor",
    paramwise_cfg=dict(layer_decay=0.65),
)
# mmseg 1.x ignores this legacy key (mixed precision is an AmpOptimWrapper); the protocol sets the wrapper.
fp16 = None

# The dataset subclass with root checks and loud errors (downstream/datasets/ade20k.py); the protocol swaps in
# SynthScenesSegDataset (its own class list) for the SynthScenes budgets.
train_dataloader = dict(dataset=dict(type="CheckedADE20KDataset"))
val_dataloader = dict(dataset=dict(type="CheckedADE20KDataset"))
test_dataloader = val_dataloader
