"""Linear probe: MAE's recipe (``main_linprobe.py`` at facebookresearch/mae@efb2a80) on a frozen encoder.

Feature: the CLS token after the encoder's final norm. Head: BatchNorm1d(affine=False, eps=1e-6) + Linear
(trunc_normal std 0.01). Optimizer: LARS (momentum 0.9, trust coefficient 0.001; 1-D parameters get neither
weight decay nor the trust ratio), lr = base_lr x batch / 256, weight decay 0, per-iteration linear warm-up
then half-cycle cosine, cross-entropy, the last partial batch of an epoch dropped. Reported: the final epoch's
top-1/top-5 on the val split (no selection on it).

Two ways to feed the head, chosen by the recipe's ``augment`` key:

* ``augment=True`` (the paper, the base budget): every step draws RandomResizedCrop + flip views and runs the
  frozen encoder on them.
* ``augment=False`` (micro/tiny): the centre-cropped train images are encoded ONCE and the head trains on the
  cached features. Because the encoder is frozen and has no stochastic layers (no dropout or drop path in
  MAE's probe), this is exactly the paper's training minus the random crops, and it costs one encoder pass
  instead of one per epoch. The features are shared with the k-NN and across probe seeds (``FEATURES``).

Why a plain, seeded torch loop instead of an mmengine Runner: the trained module is a D x C linear layer. A
Runner costs seconds to set up and milliseconds of hooks per iteration, while a step on cached features costs
microseconds, and the tiny budget trains the head for 3 seeds per method. The loop still follows the
harness's rules: the lr is a pure function of the step (``downstream.optim.warmup_cosine_lr``), the data
order a pure function of (seed, epoch), and the head's initial weights a function of the seed.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from downstream.datasets.imagenet import ImageFolderDataset
from downstream.in1k.data import FEATURES, encode_features, probe_train_transform
from downstream.in1k.metrics import topk_accuracy
from downstream.in1k.models import load_frozen_encoder, probe_head
from downstream.optim import LARS, set_lr, warmup_cosine_lr
from downstream.progress import progress_bar
from downstream.recipe import resolve_recipe
from downstream.result import FinalStep, ProtocolInputs, ProtocolResult
from methods.encoder_file import tensors_sha256

#: ``on_step(step, {'loss': ..., 'lr': ...}, head)``, called after every optimizer step of the probe
StepCallback = Callable[[int, dict[str, float], nn.Module], None]


def trainable_parameters(*modules: nn.Module) -> list[nn.Parameter]:
    """The parameters of ``modules`` that require a gradient: what the probe's optimizer trains. Freezing the
    encoder (``load_frozen_encoder``) is therefore what keeps it out of training, as in MAE's
    ``main_linprobe.py``, and a test can show that an unfrozen encoder would be trained."""
    return [p for m in modules for p in m.parameters() if p.requires_grad]


def build_probe_optimizer(
    params: Iterable[nn.Parameter], recipe: Mapping[str, Any], lr: float
) -> torch.optim.Optimizer:
    """LARS (MAE) or SGD with momentum (HPM's probe) over ``params`` (the head's, for a frozen encoder)."""
    params = list(params)
    if recipe["optimizer"] == "lars":
        return LARS(
            params,
            lr=lr,
            weight_decay=recipe["weight_decay"],
            momentum=recipe["momentum"],
            trust_coefficient=recipe["trust_coefficient"],
        )
    if recipe["optimizer"] == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=recipe["momentum"], weight_decay=recipe["weight_decay"]
        )
    raise ValueError(f"linear_probe.optimizer must be 'lars' or 'sgd', got {recipe['optimizer']!r}")


def train_probe_head(
    head: nn.Module,
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    recipe: Mapping[str, Any],
    lr: float,
    steps_per_epoch: int,
    on_epoch_end=None,
    on_step: StepCallback | None = None,
) -> list[float]:
    """Train ``head`` on ``(features, labels)`` batches (``epochs x steps_per_epoch`` of them) with MAE's
    per-iteration schedule; returns the mean training loss of each epoch. ``on_step(step, values, head)`` is
    called after every optimizer step with the step's loss and lr."""
    head.train()  # BatchNorm on batch statistics, as MAE's head in training
    epochs, history, total, count = recipe["epochs"], [], 0.0, 0
    for step, (feats, labels) in enumerate(batches):
        epoch_f = step / steps_per_epoch
        set_lr(optimizer, warmup_cosine_lr(epoch_f, lr, recipe["min_lr"], recipe["warmup_epochs"], epochs))
        loss = nn.functional.cross_entropy(head(feats), labels)
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"linear probe: loss {loss.item()} at step {step} (epoch {epoch_f:.2f})")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if on_step is not None:
            on_step(step, {"loss": loss.item(), "lr": optimizer.param_groups[0]["lr"]}, head)
        total, count = total + loss.item(), count + 1
        if count == steps_per_epoch:
            history.append(total / count)
            total, count = 0.0, 0
            if on_epoch_end is not None:
                on_epoch_end(len(history), history[-1])
    return history


def _cached_batches(
    feats: torch.Tensor, labels: torch.Tensor, batch: int, epochs: int, seed: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled full batches of cached features; the order is a function of (seed, epoch) alone."""
    steps = len(feats) // batch
    for epoch in range(epochs):
        order = torch.randperm(len(feats), generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        for s in range(steps):
            idx = order[s * batch : (s + 1) * batch]
            yield feats[idx], labels[idx]


def _augmented_batches(
    vit: nn.Module, dataset: ImageFolderDataset, recipe: Mapping[str, Any], batch: int, seed: int, device
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Fresh RandomResizedCrop + flip views each epoch, encoded by the frozen encoder (in chunks)."""
    for epoch in range(recipe["epochs"]):
        loader = DataLoader(
            dataset,
            batch_size=batch,
            shuffle=True,
            drop_last=True,
            num_workers=recipe.get("num_workers", 0),
            generator=torch.Generator().manual_seed(seed * 100_003 + epoch),
        )
        for images, labels, _ in loader:
            feats = encode_features(vit, images.to(device), recipe["pool"], recipe["feature_batch_size"])
            yield feats, labels.to(device)


def run_linear_probe(inputs: ProtocolInputs, *, on_step: StepCallback | None = None) -> dict[str, Any]:
    """Train a linear probe on the frozen encoder and evaluate it on ``data_root/val`` (final epoch).

    ``data_root`` holds ``train/`` and ``val/`` class folders. Returns ``metrics`` (``top1``, ``top5``, %),
    ``final_epoch``, ``history`` (train loss per epoch), ``recipe`` (every value used, the absolute lr and
    step counts included), ``load_report``, ``timings``, ``data`` and ``provenance_inputs``. ``on_step``: as
    ``train_probe_head``'s.
    """
    encoder_path, budget_cfg, data_root, work_dir, seed, recipe = inputs.where()
    device, progress = inputs.device, inputs.progress
    start = time.perf_counter()
    r = resolve_recipe(budget_cfg, "linear_probe", recipe)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    os.makedirs(work_dir, exist_ok=True)
    vit, report = load_frozen_encoder(encoder_path)
    vit.to(device)
    img_size = vit.patch_embed.img_size[0]
    sha = report["sha256"]

    fb, workers = r["feature_batch_size"], r.get("num_workers", 0)
    val_x, val_y, val_hit, val_s = FEATURES.get_or_extract(
        vit, sha, data_root, "val", img_size, r["eval_crop_pct"], fb, workers, progress, r["pool"]
    )
    if r["augment"]:
        train_set = ImageFolderDataset(data_root, "train", probe_train_transform(img_size, r["crop_scale"]))
        num_train, num_classes, train_hit, extract_s = len(train_set), len(train_set.classes), False, 0.0
    else:
        train_x, train_y, train_hit, extract_s = FEATURES.get_or_extract(
            vit, sha, data_root, "train", img_size, r["eval_crop_pct"], fb, workers, progress, r["pool"]
        )
        num_train, num_classes = len(train_x), int(train_y.max()) + 1
        train_x, train_y = train_x.to(device), train_y.to(device)
    num_classes = max(num_classes, int(val_y.max()) + 1)

    batch = r["batch_size"]
    steps_per_epoch = num_train // batch
    if steps_per_epoch == 0:
        raise ValueError(f"linear_probe.batch_size {batch} exceeds the {num_train} training images")
    lr = r["base_lr"] * batch / 256

    cached_on_cpu = device.type == "cpu" and not r["augment"]
    threads = single_thread() if cached_on_cpu else nullcontext()
    with threads, torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        head = probe_head(vit.embed_dim, num_classes, r["head_init_std"]).to(device)
        optimizer = build_probe_optimizer(trainable_parameters(vit, head), r, lr)
        if r["augment"]:
            batches = _augmented_batches(vit, train_set, r, batch, seed, device)
        else:
            batches = _cached_batches(train_x, train_y, batch, r["epochs"], seed)
        bar = loss_bar(progress, r["epochs"], f"linear probe seed {seed}")
        train_start = time.perf_counter()
        history = train_probe_head(
            head,
            batches,
            optimizer,
            r,
            lr,
            steps_per_epoch,
            on_epoch_end=lambda e, loss: bar(loss),
            on_step=on_step,
        )
        train_s = time.perf_counter() - train_start  # includes the encoder passes when augment=True
        bar(None)

    head.eval()
    with torch.no_grad():
        metrics = topk_accuracy(head(val_x.to(device)).cpu(), val_y)
    # The record states that the probe left the encoder as loaded (frozen: no gradient, no optimizer state).
    encoder_sha_after = tensors_sha256(vit.state_dict())
    if encoder_sha_after != report["sha256"]:
        raise RuntimeError("linear probe modified the frozen encoder (its tensors' sha256 changed)")
    recipe_used = {
        **r,
        "lr": lr,
        "steps_per_epoch": steps_per_epoch,
        "total_steps": steps_per_epoch * r["epochs"],
    }
    return ProtocolResult(
        "linear_probe",
        seed,
        metrics,
        recipe=recipe_used,
        load_report=report,
        timings=dict(
            extract_train_s=extract_s,
            extract_val_s=val_s,
            train_s=train_s,
            total_s=time.perf_counter() - start,
            feature_cache_hit=bool(train_hit and val_hit),
        ),
        data=dict(root=str(data_root), num_train=num_train, num_val=len(val_y), num_classes=num_classes),
        world_size=1,
        batch_size=batch,
        precision="fp32",
        device=str(device),
        final=FinalStep(epoch=r["epochs"], train_loss=history[-1], metrics=metrics),
        history=history,
        extra=dict(encoder_sha256_after=encoder_sha_after),
    ).to_dict()


@contextmanager
def single_thread():
    """One intra-op thread for the head's tiny matmuls on CPU: with 2 threads on a loaded 2-core machine the
    threads mostly wait for each other (measured: 720 micro steps took 12 s with 2 threads, 1 s with 1)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def loss_bar(enabled: bool, total: int, desc: str, unit: str = "epoch"):
    """A callable advancing a progress bar by one ``unit`` (showing the loss); ``None`` closes it."""
    bar = progress_bar(total=total, desc=desc, unit=unit, enabled=enabled)
    if bar is None:
        return lambda loss: None

    def update(loss: float | None) -> None:
        if loss is None:
            bar.close()
        else:
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
            bar.update(1)

    return update
