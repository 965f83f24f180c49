"""Weighted k-NN classification on frozen CLS features, as DINO's ``eval_knn.py::knn_classifier``.

Train features are the bank, val features the queries; both are L2-normalised CLS tokens after the final
norm of centre-cropped images (the same cached features as the linear probe). Each query's k nearest bank
entries by cosine similarity vote with weight exp(similarity / T); k = 20 and T = 0.07 are DINO's defaults.
No training and no randomness: the result depends on the encoder and the data only.
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F

from downstream.in1k.data import FEATURES
from downstream.in1k.metrics import topk_correct
from downstream.in1k.models import load_frozen_encoder
from downstream.recipe import resolve_recipe
from downstream.result import FinalStep, ProtocolInputs, ProtocolResult


@torch.no_grad()
def knn_classify(
    train_feats: torch.Tensor,
    train_labels: torch.Tensor,
    query_feats: torch.Tensor,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.07,
    chunk: int = 1024,
) -> torch.Tensor:
    """Class scores [Q, C] of each query: sum over its k most similar bank entries of exp(cos / T), per class.

    Features are L2-normalised here; queries are processed ``chunk`` at a time to bound memory.
    """
    bank = F.normalize(train_feats.float(), dim=1)
    k = min(k, len(bank))
    scores = []
    for queries in F.normalize(query_feats.float(), dim=1).split(chunk):
        sim, idx = (queries @ bank.T).topk(k, dim=1)  # [q, k]
        votes = torch.zeros(len(queries), num_classes, dtype=sim.dtype)
        votes.scatter_add_(1, train_labels[idx], (sim / temperature).exp())
        scores.append(votes)
    return torch.cat(scores)


def run_knn(inputs: ProtocolInputs) -> dict[str, Any]:
    """k-NN top-1/top-5 (%) of ``data_root/val`` against ``data_root/train``.

    ``seed`` is recorded only (the protocol has no randomness). Returns ``metrics``, ``recipe``,
    ``load_report``, ``timings``, ``data`` and ``provenance_inputs``, as the other IN-1K protocols.
    """
    encoder_path, budget_cfg, data_root, _, seed, recipe = inputs.where()  # it writes no files
    device, progress = inputs.device, inputs.progress
    start = time.perf_counter()
    r = resolve_recipe(budget_cfg, "knn", recipe)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    vit, report = load_frozen_encoder(encoder_path)
    vit.to(device)
    img_size, sha = vit.patch_embed.img_size[0], report["sha256"]
    fb, workers = r["feature_batch_size"], r.get("num_workers", 0)
    train_x, train_y, train_hit, train_s = FEATURES.get_or_extract(
        vit, sha, data_root, "train", img_size, r["eval_crop_pct"], fb, workers, progress, r["pool"]
    )
    val_x, val_y, val_hit, val_s = FEATURES.get_or_extract(
        vit, sha, data_root, "val", img_size, r["eval_crop_pct"], fb, workers, progress, r["pool"]
    )
    num_classes = int(max(train_y.max(), val_y.max())) + 1
    vote_start = time.perf_counter()
    scores = knn_classify(train_x, train_y, val_x, num_classes, r["k"], r["temperature"])
    ranked = scores.topk(min(5, num_classes), dim=1).indices
    correct = topk_correct(ranked, val_y, (1, 5))
    metrics = {f"top{k}": 100.0 * correct[k] / len(val_y) for k in (1, 5)}
    recipe_used = {**r, "k_used": min(r["k"], len(train_x))}
    return ProtocolResult(
        "knn",
        seed,
        metrics,
        recipe=recipe_used,
        load_report=report,
        timings=dict(
            extract_train_s=train_s,
            extract_val_s=val_s,
            vote_s=time.perf_counter() - vote_start,
            total_s=time.perf_counter() - start,
            feature_cache_hit=bool(train_hit and val_hit),
        ),
        data=dict(root=str(data_root), num_train=len(train_y), num_val=len(val_y), num_classes=num_classes),
        world_size=1,
        batch_size=fb,
        precision="fp32",
        device=str(device),
        final=FinalStep(epoch=0, metrics=metrics),
    ).to_dict()
