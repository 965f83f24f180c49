"""ImageNet-1K protocols on an exported encoder: linear probe, end-to-end fine-tune and k-NN.

One entry point per protocol, each taking a ``downstream.result.ProtocolInputs`` (encoder_path, budget_cfg,
data_root, work_dir, seed, recipe, ...) -> dict with ``protocol``, ``seed``, ``metrics`` (``top1``, ``top5``,
in %), ``final_epoch``, ``recipe`` (every value used, ``name`` included), ``load_report``
(``methods.encoder_file.LoadReport.to_dict()``), ``timings``, ``data`` and ``provenance_inputs`` (the keyword
arguments of ``reproduce.provenance.provenance`` except the dataset hash). The recipes live in each budget
file's ``linear_probe``, ``finetune`` and ``knn`` sections.

    from downstream.in1k import run_linear_probe, run_finetune, run_knn
"""

from downstream.in1k.finetune import run_finetune
from downstream.in1k.knn import knn_classify, run_knn
from downstream.in1k.linear_probe import run_linear_probe
from downstream.recipe import resolve_recipe

__all__ = [
    "knn_classify",
    "resolve_recipe",
    "run_finetune",
    "run_knn",
    "run_linear_probe",
]
