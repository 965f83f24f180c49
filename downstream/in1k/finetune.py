"""End-to-end fine-tuning: MAE's recipe (``main_finetune.py``, facebookresearch/mae@efb2a80), an mmengine run.

Network: the encoder (final norm removed) + global average pool of the patch tokens + ``fc_norm`` + Linear
head (trunc_normal std 2e-5), drop path. Data: timm's ``create_transform`` (RandomResizedCrop bicubic, flip,
RandAugment ``rand-m9-mstd0.5-inc1``, random erasing 0.25 'pixel'), timm's ``Mixup`` (mixup 0.8, cutmix 1.0,
switch prob 0.5, per batch) with label smoothing 0.1 folded into the soft targets, ``SoftTargetCrossEntropy``.
Optimizer: AdamW (0.9, 0.999) over MAE's layer-decay groups (``LayerDecayOptimWrapperConstructor``), lr =
base_lr x batch / 256, per-iteration warm-up + half-cycle cosine to ``min_lr`` (``WarmupCosineLrHook``).
Evaluation: Resize + CenterCrop, top-1/top-5 after the final epoch only (no selection on the val split).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import torch
from mmengine.dist import get_dist_info
from mmengine.runner import Runner

from downstream.datasets.imagenet import ImageFolderDataset
from downstream.in1k import metrics as _metrics  # noqa: F401  (registers TopKAccuracy)
from downstream.in1k.data import MMClassification, eval_transform, finetune_train_transform
from downstream.in1k.models import FineTuneClassifier, finetune_vit
from downstream.mm_run import RunHook, unwrap
from downstream.optim import LayerDecayOptimWrapperConstructor, WarmupCosineLrHook  # noqa: F401  (registered)
from downstream.recipe import resolve_recipe
from downstream.result import FinalStep, ProtocolInputs, ProtocolResult
from methods.encoder_file import tensors_sha256


class RunSummaryHook(RunHook):
    """Collects what the record needs: the mean training loss of each epoch and the final val metrics. As a
    ``RunHook`` it checks the loaded encoder and head at the first step (the Runner initialises weights
    before its hooks run) and shows a progress bar; a non-finite loss is recorded, not stopped on."""

    def __init__(
        self, progress: bool = True, desc: str = "fine-tune", initial_sha256: str | None = None
    ) -> None:
        super().__init__("fine-tune", progress, desc, stop_on_nonfinite=False)
        self.initial_sha256 = initial_sha256
        self.epoch_losses: list[float] = []
        self.val_metrics: dict[str, float] = {}
        self._sum, self._n = 0.0, 0

    def checked_weights(self, runner) -> tuple[torch.nn.Module, str] | None:
        return None if self.initial_sha256 is None else (unwrap(runner.model).vit, self.initial_sha256)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        super().after_train_iter(runner, batch_idx, data_batch, outputs)
        self._sum, self._n = self._sum + self.losses[-1], self._n + 1

    def after_train_epoch(self, runner) -> None:
        self.epoch_losses.append(self._sum / max(self._n, 1))
        self._sum, self._n = 0.0, 0

    def after_val_epoch(self, runner, metrics: dict[str, float] | None = None) -> None:
        # TopKAccuracy's keys carry mmengine's prefix ('val/top1'); the record keeps the bare names
        self.val_metrics = {k.split("/")[-1]: float(v) for k, v in (metrics or {}).items()}


def _mixup(r: Mapping[str, Any], num_classes: int):
    if not (r["mixup"] > 0 or r["cutmix"] > 0):
        return None
    from timm.data import Mixup

    return Mixup(
        mixup_alpha=r["mixup"],
        cutmix_alpha=r["cutmix"],
        cutmix_minmax=None,
        prob=r["mixup_prob"],
        switch_prob=r["mixup_switch_prob"],
        mode=r["mixup_mode"],
        label_smoothing=r["label_smoothing"],
        num_classes=num_classes,
    )


def run_finetune(inputs: ProtocolInputs) -> dict[str, Any]:
    """Fine-tune the encoder end to end on ``data_root/train`` and evaluate on ``data_root/val`` once, after
    the final epoch. ``budget_cfg['finetune']`` holds the recipe; ``recipe`` names an optional per-method
    override (``downstream.recipe``, a method folder's ``recipes.py``).

    ``finetune.batch_size`` is the effective global batch (processes x per-process batch x ``accum_iter``).
    Returns ``metrics`` (``top1``, ``top5``, %), ``final_epoch``, ``history`` (train loss per epoch),
    ``recipe`` (values used, absolute lr included), ``load_report``, ``timings``, ``data`` and
    ``provenance_inputs``. ``hooks`` are added to the Runner (the golden traces record every step).
    """
    encoder_path, budget_cfg, data_root, work_dir, seed, recipe = inputs.where()
    launcher, progress, log_level, hooks = inputs.launcher, inputs.progress, inputs.log_level, inputs.hooks
    start = time.perf_counter()
    r = resolve_recipe(budget_cfg, "finetune", recipe)
    _, world_size = get_dist_info()
    accum = int(r.get("accum_iter", 1))
    if r["batch_size"] % (world_size * accum):
        raise ValueError(f"finetune.batch_size {r['batch_size']} is not divisible by {world_size} x {accum}")
    per_step_batch = r["batch_size"] // (world_size * accum)

    train_base = ImageFolderDataset(data_root, "train")
    num_classes = len(train_base.classes)
    # The head's initial weights are a function of the seed alone: the Runner seeds the RNGs only after the
    # model exists, so without this they depended on whatever ran before in the process (a reused checkpoint
    # or a fresh pretraining gave different fine-tunes).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vit, report = finetune_vit(encoder_path, num_classes, r["drop_path"], r["head_init_std"])
    img_size = vit.patch_embed.img_size[0]
    train_base.transform = finetune_train_transform(img_size, r)
    val_base = ImageFolderDataset(data_root, "val", eval_transform(img_size, r["eval_crop_pct"]))
    # iterations (micro-batches) per epoch: MAE's len(data_loader), which its lr schedule divides by
    iters_per_epoch = len(train_base) // (world_size * per_step_batch)
    if iters_per_epoch < accum:
        raise ValueError(
            f"finetune.batch_size {r['batch_size']} exceeds the {len(train_base)} training images"
        )
    model = FineTuneClassifier(vit, _mixup(r, num_classes), r["label_smoothing"])

    lr = r["base_lr"] * r["batch_size"] / 256
    on_gpu = torch.cuda.is_available()
    precision = "bf16-autocast" if (r.get("precision", "auto") == "auto" and on_gpu) else "fp32"
    optim_wrapper = dict(
        type="AmpOptimWrapper" if precision == "bf16-autocast" else "OptimWrapper",
        optimizer=dict(type="AdamW", lr=lr, weight_decay=r["weight_decay"], betas=tuple(r["betas"])),
        constructor="LayerDecayOptimWrapperConstructor",
        paramwise_cfg=dict(layer_decay=r["layer_decay"]),
        accumulative_counts=accum,
    )
    if precision == "bf16-autocast":
        optim_wrapper["dtype"] = "bfloat16"
    if r.get("clip_grad"):
        optim_wrapper["clip_grad"] = dict(max_norm=r["clip_grad"])
    loader = dict(
        batch_size=per_step_batch,
        num_workers=r.get("num_workers", 0),
        persistent_workers=r.get("num_workers", 0) > 0,
        collate_fn=dict(type="default_collate"),
    )
    ckpt_every = r.get("checkpoint_interval_epochs", 0)
    initial_sha = tensors_sha256(vit.state_dict())
    summary = RunSummaryHook(progress, desc=f"fine-tune seed {seed}", initial_sha256=initial_sha)
    epochs = r["epochs"]
    runner = Runner(
        model=model,
        work_dir=str(work_dir),
        experiment_name=f"finetune-seed{seed}",
        train_dataloader=dict(
            dataset=MMClassification(train_base),
            sampler=dict(type="DefaultSampler", shuffle=True, seed=seed),
            drop_last=True,  # as MAE's train loader
            **loader,
        ),
        val_dataloader=dict(
            dataset=MMClassification(val_base), sampler=dict(type="DefaultSampler", shuffle=False), **loader
        ),
        val_evaluator=dict(type="TopKAccuracy"),
        train_cfg=dict(
            by_epoch=True, max_epochs=epochs, val_interval=epochs
        ),  # validate after the last epoch
        val_cfg=dict(),
        optim_wrapper=optim_wrapper,
        default_hooks=dict(
            timer=dict(type="IterTimerHook"),
            logger=dict(type="LoggerHook", interval=r.get("log_interval", 50)),
            param_scheduler=None,
            checkpoint=(
                dict(type="CheckpointHook", interval=ckpt_every, by_epoch=True, max_keep_ckpts=1)
                if ckpt_every
                else None
            ),
            sampler_seed=dict(type="DistSamplerSeedHook"),
        ),
        custom_hooks=[
            WarmupCosineLrHook(lr, r["min_lr"], r["warmup_epochs"], epochs, iters_per_epoch, accum),
            summary,
            *hooks,
        ],
        randomness=dict(seed=seed),
        launcher=launcher,
        env_cfg=dict(cudnn_benchmark=False),
        log_level=log_level,
        default_scope=None,
    )
    setup_s = time.perf_counter() - start
    train_start = time.perf_counter()
    runner.train()
    train_s = time.perf_counter() - train_start
    metrics = {k: float(v) for k, v in summary.val_metrics.items()}
    recipe_used = {
        **r,
        "lr": lr,
        "per_step_batch": per_step_batch,
        "world_size": world_size,
        "steps_per_epoch": iters_per_epoch // accum,  # optimizer steps
        "total_steps": iters_per_epoch // accum * epochs,
        "precision": precision,
    }
    return ProtocolResult(
        "finetune",
        seed,
        metrics,
        recipe=recipe_used,
        load_report=report,
        timings=dict(
            setup_s=setup_s,
            train_s=train_s,  # training epochs plus the final evaluation
            total_s=time.perf_counter() - start,
            train_images_per_s=iters_per_epoch * epochs * per_step_batch * world_size / max(train_s, 1e-9),
        ),
        data=dict(
            root=str(data_root), num_train=len(train_base), num_val=len(val_base), num_classes=num_classes
        ),
        world_size=world_size,
        batch_size=r["batch_size"],
        precision=precision,
        device="cuda" if on_gpu else "cpu",
        final=FinalStep(epoch=epochs, train_loss=summary.epoch_losses[-1], metrics=metrics),
        history=summary.epoch_losses,
        # checked unchanged at the first step (the Runner re-initialises none)
        extra=dict(initial_weights_sha256=initial_sha),
    ).to_dict()
