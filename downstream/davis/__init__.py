"""DAVIS-2017 video object segmentation by label propagation (DINO's procedure) with the official metrics.

``run_davis(encoder_path, budget_cfg, davis_root, work_dir, seed=0, recipe='mae')`` -> a result dict as the
IN-1K protocols return (``protocol='davis'``, ``metrics`` JF_mean, J_mean, J_recall, J_decay, F_mean,
F_recall, F_decay in %). ``evaluate_results`` / ``write_results`` (also ``python -m
downstream.davis.evaluate``) score any folder of predicted PNGs as the davis2017-evaluation toolkit does.
README.md: sources, and every detail of DINO's procedure with the recipe key that sets it.

    from downstream.davis import run_davis
"""

from downstream.davis.evaluate import DavisScores, evaluate_results, write_results
from downstream.davis.propagation import LabelPropagator, PropagationConfig, build_window, labels_to_ids
from downstream.davis.protocol import resolve_recipe, run_davis

__all__ = [
    "DavisScores",
    "LabelPropagator",
    "PropagationConfig",
    "build_window",
    "evaluate_results",
    "labels_to_ids",
    "resolve_recipe",
    "run_davis",
    "write_results",
]
