"""ADE20K semantic segmentation: UperNet on the shared ViT through mmsegmentation (MAE's/BEiT's protocol).

``run_ade20k(ProtocolInputs(encoder_path, budget_cfg, ade20k_root, work_dir, seed=0))`` -> a result dict as
every protocol returns (``protocol='ade20k'``, ``metrics`` mIoU and aAcc in %). The mmseg config is
``configs/mimvit_upernet_160k_ade20k-512x512.py``; README.md lists every value at paper scale with its source.

    from downstream.ade20k import run_ade20k
"""

from __future__ import annotations

from downstream.lazy import lazy_exports

# Exports resolve on first use, so importing the package does not import mmseg.
__getattr__, __all__ = lazy_exports(
    __name__,
    {"build_config": "downstream.ade20k.protocol", "run_ade20k": "downstream.ade20k.protocol"},
)
