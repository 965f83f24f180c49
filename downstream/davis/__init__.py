"""DAVIS-2017 video object segmentation by label propagation (DINO's procedure) with the official metrics.

``run_davis(ProtocolInputs(encoder_path, budget_cfg, davis_root, work_dir, seed=0))`` -> a result dict as
the IN-1K protocols return (``protocol='davis'``, ``metrics`` JF_mean, J_mean, J_recall, J_decay, F_mean,
F_recall, F_decay in %). ``evaluate_results`` / ``write_results`` (also ``python -m
downstream.davis.evaluate``) score any folder of predicted PNGs as the davis2017-evaluation toolkit does.
README.md: sources, and every detail of DINO's procedure with the recipe key that sets it.

    from downstream.davis import run_davis
"""

from __future__ import annotations

from downstream.lazy import lazy_exports

# Exports resolve on first use: importing the package does not import its modules, so
# ``python -m downstream.davis.evaluate`` runs the module once (runpy warns when the package already did).
__getattr__, __all__ = lazy_exports(
    __name__,
    {
        "DavisScores": "downstream.davis.evaluate",
        "evaluate_results": "downstream.davis.evaluate",
        "write_results": "downstream.davis.evaluate",
        "LabelPropagator": "downstream.davis.propagation",
        "PropagationConfig": "downstream.davis.propagation",
        "build_window": "downstream.davis.propagation",
        "labels_to_ids": "downstream.davis.propagation",
        "run_davis": "downstream.davis.protocol",
    },
)
