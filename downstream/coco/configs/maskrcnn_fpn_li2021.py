# Mask R-CNN + FPN on four blocks of a plain ViT (Li et al. 2021, "Benchmarking detection transfer learning
# with vision transformers"): MAE's and RC-MAE's COCO protocol. The backbone adapter takes four blocks (the
# last of each quarter) and rescales them to strides 4/8/16/32 (deconvolutions / identity / max-pool, as BEiT
# and MAE), then mmdet's FPN. Everything else is ViTDet's, whose heads (2-conv RPN, 4conv1fc box head, normed
# convs) follow Li et al.'s: the LSJ data, window attention with global blocks, optimiser and schedule. MAE
# searched lr, wd, drop path and epochs per entry without publishing them (README.md, fidelity table).
_base_ = ["./maskrcnn_vitdet.py"]

model = dict(
    backbone=dict(pyramid="multilevel", out_indices=[2, 5, 8, 11]),
    neck=dict(_delete_=True, type="FPN", in_channels=[768, 768, 768, 768], out_channels=256, num_outs=5),
)
