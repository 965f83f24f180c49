"""Top-k accuracy (percent), as MAE's ``util/misc.py::accuracy``, for plain loops and mmengine evaluators."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS


def topk_correct(ranked: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict[int, int]:
    """Number of samples whose label is among the first k of ``ranked`` ([B, >=k] class ids, best first).

    k larger than the number of ranked classes counts every ranked class (top-5 of 3 classes is 100 %).
    """
    hits = ranked == labels.view(-1, 1)
    return {k: int(hits[:, :k].any(dim=1).sum()) for k in ks}


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """{'top1': %, 'top5': %} of logits [N, C] against labels [N]."""
    ranked = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices
    correct = topk_correct(ranked, labels, ks)
    return {f"top{k}": 100.0 * correct[k] / len(labels) for k in ks}


@METRICS.register_module()
class TopKAccuracy(BaseMetric):
    """mmengine metric over ``FineTuneClassifier.predict`` outputs (dicts with ``topk`` and ``label``)."""

    default_prefix = "val"

    def __init__(self, topk: Sequence[int] = (1, 5), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.topk = tuple(topk)

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            self.results.append((sample["topk"], sample["label"]))

    def compute_metrics(self, results: list) -> dict[str, float]:
        ranked = torch.stack([r[0] for r in results])
        labels = torch.stack([torch.as_tensor(r[1]) for r in results])
        correct = topk_correct(ranked, labels, self.topk)
        return {f"top{k}": 100.0 * correct[k] / len(labels) for k in self.topk}
