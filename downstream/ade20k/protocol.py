"""ADE20K semantic segmentation, UperNet on the shared ViT: mmsegmentation's MAE protocol, an mmengine run.

The config is ``configs/mimvit_upernet_160k_ade20k-512x512.py``: it inherits mmseg's own MAE/UperNet config
(``mmseg::mae/...``) and replaces only the backbone (``MIMViT``, loading our encoder file with the strict
loader, its four blocks rescaled to strides 4-32 inside the adapter, so no neck), the layer-decay
constructor (ours keys on timm's names) and the dataset class. ``build_config`` writes the budget's ``ade20k``
section into it (crop, resize scale, schedule, batch, head widths, dataset); at the base budget those values
are mmseg's.
The run trains for ``iters`` iterations, then tests once on the validation split with slide inference: the
final-iteration mIoU / aAcc of mmseg's ``IoUMetric`` are reported, with no selection.

    from downstream.ade20k import run_ade20k
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmengine.config import Config

from downstream import recipe as recipes
from downstream.in1k.models import encoder_arch
from downstream.mm_run import DenseRunHook, check_device, quiet_mmengine, train_then_test, unwrap
from downstream.recipe import RecipeError, Section
from downstream.result import FinalStep, ProtocolInputs, ProtocolResult
from methods.backbone import resolve_arch

PROTOCOL = "ade20k"
CONFIG = Path(__file__).resolve().parent / "configs" / "mimvit_upernet_160k_ade20k-512x512.py"


def _check_section(r: dict[str, Any], recipe: str, where: str) -> str:
    """What the key-by-key check leaves: pair sizes, the warm-up within the schedule, windows covering the
    image."""
    for key, size in (("scale", 2), ("ratio_range", 2), ("betas", 2)):
        if len(r[key]) != size:
            raise RecipeError(f"{where}: ade20k.{key} = {r[key]!r} must hold {size} values")
    if r["warmup_iters"] >= r["iters"]:
        raise RecipeError(
            f"{where}: ade20k.warmup_iters = {r['warmup_iters']} must be below iters {r['iters']}"
        )
    if r["slide_stride"] > r["crop_size"]:
        raise RecipeError(
            f"{where}: ade20k.slide_stride = {r['slide_stride']} exceeds crop_size {r['crop_size']} "
            "(windows would skip pixels)"
        )
    for key in ("scale", "ratio_range", "betas"):
        r[key] = list(r[key])
    return recipe


#: What a budget's ``ade20k`` section holds (base.py gives each paper value with its source).
SECTION = Section(
    keys=(
        "train_split",
        "val_split",
        "scale",
        "ratio_range",
        "cat_max_ratio",
        "flip_prob",
        "lr",
        "betas",
        "weight_decay",
        "layer_decay",
        "warmup_start_factor",
        "poly_power",
        "min_lr",
        "drop_path",
        "aux_loss_weight",
    ),
    positive=("crop_size", "iters", "batch_size", "slide_stride", "head_channels", "aux_channels"),
    non_negative=("warmup_iters", "num_workers", "checkpoint_interval", "log_interval"),
    # keys whose value selects one implemented behaviour, and the values this code implements
    choices={
        "dataset": ("CheckedADE20KDataset", "SynthScenesSegDataset"),  # downstream/datasets/ade20k.py
        "photometric_distortion": (True, False),  # mmseg's PhotoMetricDistortion in the train pipeline
        "test_mode": ("slide", "whole"),  # mmseg's EncoderDecoder inference modes
        "precision": ("auto", "fp32"),  # auto: bf16 autocast on GPU (AmpOptimWrapper), fp32 on CPU
    },
    check=_check_section,
)


# ---------------------------------------------------------------------------------------------------------
# The config: mmseg's, with the recipe written in
# ---------------------------------------------------------------------------------------------------------
def num_classes_of(dataset_type: str) -> int:
    """Class count of a registered ADE20K-layout dataset class (its own class list: 150 for ADE20K)."""
    from downstream.datasets import ade20k

    return len(getattr(ade20k, dataset_type).METAINFO["classes"])


def _step(pipeline: list[dict], type_: str) -> dict:
    """The pipeline step of type ``type_`` (mmseg's base config must still have it)."""
    for step in pipeline:
        if step["type"] == type_:
            return step
    raise ValueError(f"{CONFIG.name}: mmseg's pipeline has no {type_} step; the protocol edits it")


def build_config(
    r: Mapping[str, Any],
    encoder_path: str | os.PathLike | None,
    ade20k_root: str | os.PathLike,
    work_dir: str | os.PathLike,
    seed: int = 0,
    *,
    arch: str | Mapping[str, Any] | None = None,
    world_size: int = 1,
    on_gpu: bool = False,
) -> Config:
    """mmseg's MAE/UperNet config with our backbone (``CONFIG``) and the recipe ``r`` written in.

    The ViT's arch comes from the encoder file's metadata; ``encoder_path=None`` (tests) needs ``arch`` and
    builds the ViT at MAE's random initialisation."""
    cfg = Config.fromfile(str(CONFIG))
    if encoder_path is None and arch is None:
        raise ValueError("build_config: give an arch when there is no encoder file")
    embed_dim = int(
        resolve_arch(arch)["embed_dim"] if arch is not None else encoder_arch(encoder_path)["embed_dim"]
    )
    if r["batch_size"] % world_size:
        raise ValueError(f"ade20k.batch_size {r['batch_size']} is not divisible by {world_size} processes")
    crop = (r["crop_size"], r["crop_size"])
    num_classes = num_classes_of(r["dataset"])

    cfg.crop_size = crop
    model = cfg.model
    model.data_preprocessor.size = crop
    cfg.data_preprocessor.size = crop
    model.backbone.update(
        checkpoint=None if encoder_path is None else str(encoder_path),
        arch=None if arch is None else dict(resolve_arch(arch)),
        img_size=crop,
    )
    model.backbone.drop_path_rate = r["drop_path"]
    model.decode_head.update(
        in_channels=[embed_dim] * 4, channels=r["head_channels"], num_classes=num_classes
    )
    model.auxiliary_head.update(in_channels=embed_dim, channels=r["aux_channels"], num_classes=num_classes)
    model.auxiliary_head.loss_decode.loss_weight = r["aux_loss_weight"]
    if r["test_mode"] == "slide":
        model.test_cfg = dict(mode="slide", crop_size=crop, stride=(r["slide_stride"], r["slide_stride"]))
    else:
        model.test_cfg = dict(mode="whole")

    # Data: mmseg's pipelines, edited step by step (a step mmseg's base dropped fails here, by name)
    train_pipeline = cfg.train_dataloader.dataset.pipeline
    _step(train_pipeline, "RandomResize").update(scale=tuple(r["scale"]), ratio_range=tuple(r["ratio_range"]))
    _step(train_pipeline, "RandomCrop").update(crop_size=crop, cat_max_ratio=r["cat_max_ratio"])
    _step(train_pipeline, "RandomFlip").update(prob=r["flip_prob"])
    if not r["photometric_distortion"]:
        train_pipeline.remove(_step(train_pipeline, "PhotoMetricDistortion"))
    test_pipeline = cfg.test_dataloader.dataset.pipeline
    _step(test_pipeline, "Resize").update(scale=tuple(r["scale"]))
    workers = dict(num_workers=r["num_workers"], persistent_workers=r["num_workers"] > 0)
    cfg.train_dataloader.update(batch_size=r["batch_size"] // world_size, **workers)
    cfg.train_dataloader.sampler = dict(type="InfiniteSampler", shuffle=True, seed=seed)
    cfg.test_dataloader.update(batch_size=1, **workers)  # mmseg's: one image per slide-inference call
    for loader, split in ((cfg.train_dataloader, r["train_split"]), (cfg.test_dataloader, r["val_split"])):
        loader.dataset.update(
            type=r["dataset"],
            data_root=str(ade20k_root),
            data_prefix=dict(img_path=f"images/{split}", seg_map_path=f"annotations/{split}"),
        )
    # Train, then one test at the end: no validation during training, nothing to select on
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_evaluator.prefix = PROTOCOL  # metric keys 'ade20k/mIoU', ...

    # Optimisation: AdamW over MAE's layer-decay groups, linear warm-up then poly decay (per iteration)
    cfg.optim_wrapper.optimizer.update(lr=r["lr"], betas=tuple(r["betas"]), weight_decay=r["weight_decay"])
    cfg.optim_wrapper.paramwise_cfg.layer_decay = r["layer_decay"]
    if r["precision"] == "auto" and on_gpu:
        cfg.optim_wrapper.update(type="AmpOptimWrapper", dtype="bfloat16")
    warmup = r["warmup_iters"]
    cfg.param_scheduler = [
        dict(type="LinearLR", start_factor=r["warmup_start_factor"], by_epoch=False, begin=0, end=warmup),
        dict(
            type="PolyLR",
            eta_min=r["min_lr"],
            power=r["poly_power"],
            begin=warmup,
            end=r["iters"],
            by_epoch=False,
        ),
    ][0 if warmup else 1 :]
    cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=r["iters"], val_interval=r["iters"])

    # Runtime
    hooks = cfg.default_hooks
    hooks.logger.interval = r["log_interval"] or r["iters"]
    if r["checkpoint_interval"]:
        hooks.checkpoint.update(interval=r["checkpoint_interval"], max_keep_ckpts=1)
    else:
        hooks.checkpoint = None
    cfg.randomness = dict(seed=seed)
    cfg.env_cfg.cudnn_benchmark = False
    cfg.work_dir = str(work_dir)
    cfg.log_level = "WARNING"
    return cfg


# ---------------------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------------------
#: mmseg's notices about its own defaults, printed on every run; the values they name are the protocol's.
_KNOWN_WARNINGS = (
    r"Default ``avg_non_ignore`` is False",  # mmseg's CrossEntropyLoss default, as the MAE config runs it
    r"``build_loss`` would be deprecated",
    r"The draw is False",  # SegVisualizationHook: nothing is drawn
    r"`reduce_zero_label` will be deprecated",  # set in both the dataset and LoadAnnotations, as mmseg's base
)


def run_ade20k(inputs: ProtocolInputs) -> dict[str, Any]:
    """Train UperNet on the encoder for the budget's ``ade20k.iters`` iterations, then test once.

    Returns ``protocol``, ``seed``, ``metrics`` (``mIoU``, ``aAcc`` in %, from mmseg's ``IoUMetric`` after the
    final iteration), ``final_epoch``, ``recipe``, ``load_report`` (the strict loader's), ``timings``,
    ``data``, ``protocol_detail`` and ``provenance_inputs``, as the other protocols. ``hooks`` are added to
    the Runner."""
    encoder_path, budget_cfg, ade20k_root, work_dir, seed, recipe = inputs.where()
    progress, device, launcher, hooks = inputs.progress, inputs.device, inputs.launcher, inputs.hooks
    from mmengine.dist import get_dist_info

    start = time.perf_counter()
    r = recipes.resolve_recipe(budget_cfg, PROTOCOL, recipe)
    placed = check_device(device, PROTOCOL)
    on_gpu = placed == "cuda"
    _, world_size = get_dist_info()
    cfg = build_config(r, encoder_path, ade20k_root, work_dir, seed, world_size=world_size, on_gpu=on_gpu)
    cfg.launcher = launcher
    quiet_mmengine()
    hook = DenseRunHook(PROTOCOL, progress, desc=f"ADE20K UperNet seed {seed}")
    run = train_then_test(cfg, hook, start=start, ignore_warnings=_KNOWN_WARNINGS, hooks=hooks)
    runner, backbone, report = run.runner, unwrap(run.runner.model).backbone, run.load_report
    train_s = run.timings["train_s"]
    # IoUMetric rounds to 2 decimals in float32; the record keeps those 2 decimals
    scores = {k.split("/")[-1]: round(float(v), 2) for k, v in run.scores.items()}
    metrics = {k: scores[k] for k in ("mIoU", "aAcc")}
    blocks = [int(i) for i in backbone.out_indices]
    train_set = runner.train_loop.dataloader.dataset
    test_set = runner.test_loop.dataloader.dataset
    precision = "bf16-autocast" if cfg.optim_wrapper.type == "AmpOptimWrapper" else "fp32"
    mode = (
        f"slide inference (window {r['crop_size']}, stride {r['slide_stride']})"
        if r["test_mode"] == "slide"
        else "whole-image inference"
    )
    recipe_used = {**r, "out_indices": blocks, "world_size": world_size, "precision_used": precision}
    return ProtocolResult(
        PROTOCOL,
        seed,
        metrics,
        recipe=recipe_used,
        load_report=report,
        timings=dict(**run.timings, train_images_per_s=r["iters"] * r["batch_size"] / max(train_s, 1e-9)),
        data=dict(
            root=str(ade20k_root),
            dataset=r["dataset"],
            num_train=len(train_set),
            num_val=len(test_set),
            num_classes=num_classes_of(r["dataset"]),
            skipped=train_set.num_skipped + test_set.num_skipped,
        ),
        world_size=world_size,
        batch_size=r["batch_size"],
        precision=precision,
        device=placed,
        final=FinalStep(
            iteration=r["iters"],
            train_loss=hook.losses[-1] if hook.losses else None,
            metrics=dict(mAcc=scores["mAcc"], **metrics),
        ),
        protocol_detail=(
            f"ADE20K: UperNet on blocks {blocks}, crop {r['crop_size']}, {r['iters']} iters x batch "
            f"{r['batch_size']}, AdamW lr {r['lr']:g}, layer decay {r['layer_decay']}, {mode}"
        ),
    ).to_dict()
