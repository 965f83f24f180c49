"""COCO detection and instance segmentation: Mask R-CNN fine-tuned end to end on the shared ViT, as an mmdet
run (mmengine ``Runner``), then mmdet's COCO metric (pycocotools) on the validation split.

Two protocols, each an mmdet config in ``configs/`` that inherits mmdet's own bases:

* ``vitdet`` (default): ViTDet as ColorMAE runs it (mmdet 3.2.0 ``projects/ViTDet``): the last block's map,
  window attention with a few global blocks, the simple feature pyramid, LSJ, ViTDet's schedule;
* ``fpn_li2021``: Mask R-CNN + FPN on four blocks (Li et al. 2021), MAE's and RC-MAE's protocol.

The budget's ``coco`` section holds the recipe (sizes, sampling, schedule); ``detector_config`` writes each
of its values into the config, and the ``base`` section (the paper's values) changes nothing in it. The
encoder file goes to the ``MIMViT`` backbone adapter, which loads it with the strict loader; its load report
goes into the result. The model after the last iteration is evaluated once (no selection on the val split).

    from downstream.coco import run_coco
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmengine.config import Config

from downstream import recipe as recipes
from downstream.in1k.models import encoder_arch
from downstream.mm_run import DenseRunHook, check_device, train_then_test
from downstream.recipe import DEFAULT_RECIPE, RecipeError, Section
from downstream.result import FinalStep, ProtocolInputs, ProtocolResult

PROTOCOL = "coco"
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
#: protocol name -> (config file, one line for the table's notes)
PROTOCOLS: dict[str, tuple[str, str]] = {
    "vitdet": ("maskrcnn_vitdet.py", "ViTDet Mask R-CNN (simple feature pyramid from the last block)"),
    "fpn_li2021": ("maskrcnn_fpn_li2021.py", "Mask R-CNN + FPN on four blocks (Li et al. 2021)"),
}
#: COCO metric keys (mmdet's ``CocoMetric``, fractions) -> record keys (percent). AP_box / AP_mask are the
#: ones Table 3 reads (tables/specs.py).
METRIC_KEYS = {
    "coco/bbox_mAP": "AP_box",
    "coco/bbox_mAP_50": "AP50_box",
    "coco/bbox_mAP_75": "AP75_box",
    "coco/segm_mAP": "AP_mask",
    "coco/segm_mAP_50": "AP50_mask",
    "coco/segm_mAP_75": "AP75_mask",
}


def _check_section(r: dict[str, Any], recipe: str, where: str) -> str:
    """What the key-by-key check leaves: the detector protocol (the budget's, or the one ``recipe`` names),
    the LSJ range and the lr steps. The budget's own protocol runs as the shared default recipe; another one
    is its own recipe (its records and table rows stay apart)."""
    chosen = recipe if recipe in PROTOCOLS else r["protocol"]
    if chosen not in PROTOCOLS:
        raise RecipeError(f"{where}: coco protocol {chosen!r}; implemented: {list(PROTOCOLS)}")
    if len(r["lsj_ratio_range"]) != 2 or not 0 < r["lsj_ratio_range"][0] <= r["lsj_ratio_range"][1]:
        raise RecipeError(f"{where}: coco.lsj_ratio_range = {r['lsj_ratio_range']!r} must be (low, high)")
    if list(r["lr_steps"]) != sorted(r["lr_steps"]) or any(s > r["max_iters"] for s in r["lr_steps"]):
        raise RecipeError(
            f"{where}: coco.lr_steps = {r['lr_steps']!r} must increase and stay within max_iters "
            f"({r['max_iters']})"
        )
    for key in ("global_blocks", "out_indices", "lsj_ratio_range", "betas", "lr_steps"):
        r[key] = list(r[key]) if r[key] is not None else None
    name = DEFAULT_RECIPE if recipe == r["protocol"] else recipe
    r["protocol"] = chosen
    return name


#: What a budget's ``coco`` section holds (base.py explains each key and gives its source).
SECTION = Section(
    keys=(
        "protocol",
        "lsj_ratio_range",
        "hflip_prob",
        "pad_value",
        "window_size",
        "global_blocks",
        "out_indices",
        "drop_path_rate",
        "anchor_scale",
        "lr",
        "betas",
        "weight_decay",
        "layer_decay",
        "warmup_start_factor",
        "lr_steps",
        "lr_gamma",
    ),
    positive=(
        "image_size",
        "neck_channels",
        "fc_channels",
        "rpn_sampler_num",
        "rpn_nms_pre",
        "rpn_max_per_img",
        "rcnn_sampler_num",
        "test_rpn_nms_pre",
        "test_rpn_max_per_img",
        "test_max_per_img",
        "batch_size",
        "max_iters",
        "test_batch_size",
        "log_interval",
    ),
    non_negative=("num_workers", "checkpoint_interval", "warmup_iters"),
    choices={"precision": ("auto", "fp32")},  # auto: fp16 AMP on GPU, fp32 on CPU
    check=_check_section,
    recipes=tuple(PROTOCOLS),
)


# ---------------------------------------------------------------------------------------------------------
# The detector config
# ---------------------------------------------------------------------------------------------------------
def num_classes(synthscenes: bool) -> int:
    """The class count of the dataset subclass the run reads (SynthScenes' shapes, or COCO's 80)."""
    from downstream.datasets.coco import CheckedCocoDataset, SynthScenesCocoDataset

    dataset = SynthScenesCocoDataset if synthscenes else CheckedCocoDataset
    return len(dataset.METAINFO["classes"])


def _set_pipeline_size(pipeline: list[dict], size: tuple[int, int], r: Mapping[str, Any], where: str) -> None:
    """Write the crop size (and the LSJ range, flip, pad value) into each transform that takes one; a
    pipeline without a transform the recipe sets is an error, never a silent no-op."""
    seen = set()
    for t in pipeline:
        kind = t["type"]
        if kind == "RandomResize":
            t["scale"], t["ratio_range"] = size, tuple(r["lsj_ratio_range"])
        elif kind == "RandomCrop":
            t["crop_size"] = size
        elif kind == "Resize":
            t["scale"] = size
        elif kind == "Pad":
            t["size"], t["pad_val"] = size, dict(img=(r["pad_value"],) * 3)
        elif kind == "RandomFlip":
            t["prob"] = r["hflip_prob"]
        seen.add(kind)
    expected = {"RandomResize", "RandomCrop", "Pad", "RandomFlip"} if where == "train" else {"Resize", "Pad"}
    if expected - seen:
        raise RecipeError(f"the {where} pipeline lacks {sorted(expected - seen)}: cannot apply the recipe")


def detector_config(
    r: Mapping[str, Any],
    *,
    encoder_path: str | os.PathLike | None,
    arch: Mapping[str, Any],
    coco_root: str | os.PathLike,
    work_dir: str | os.PathLike,
    seed: int = 0,
    synthscenes: bool = True,
    world_size: int = 1,
    on_gpu: bool = False,
) -> Config:
    """The protocol's mmdet config with the recipe ``r`` (``resolve_recipe``) written in: the encoder
    (``arch``: its ``ENCODER_ARCH_KEYS``), the data root, sizes, sampling, optimiser and schedule."""
    cfg = Config.fromfile(str(CONFIG_DIR / PROTOCOLS[r["protocol"]][0]))
    size = (r["image_size"], r["image_size"])
    model = cfg.model
    model.data_preprocessor.batch_augments[0].size = size
    bb = model.backbone
    bb.checkpoint = None if encoder_path is None else str(encoder_path)
    bb.arch = {k: arch[k] for k in ("img_size", "patch_size", "embed_dim", "depth", "num_heads", "mlp_ratio")}
    bb.img_size = size
    bb.window_size, bb.global_blocks = r["window_size"], r["global_blocks"]
    bb.drop_path_rate = r["drop_path_rate"]
    if bb.pyramid == "multilevel":
        bb.out_indices = r["out_indices"]
        model.neck.in_channels = [arch["embed_dim"]] * 4
    else:
        model.neck.in_channels, model.neck.patch_size = arch["embed_dim"], arch["patch_size"]
    channels = r["neck_channels"]
    model.neck.out_channels = channels
    model.rpn_head.in_channels = model.rpn_head.feat_channels = channels
    model.rpn_head.anchor_generator.scales = [r["anchor_scale"]]
    roi = model.roi_head
    roi.bbox_roi_extractor.out_channels = roi.mask_roi_extractor.out_channels = channels
    roi.bbox_head.in_channels = roi.bbox_head.conv_out_channels = channels
    roi.bbox_head.fc_out_channels = r["fc_channels"]
    roi.mask_head.in_channels = roi.mask_head.conv_out_channels = channels
    roi.bbox_head.num_classes = roi.mask_head.num_classes = num_classes(synthscenes)

    train, test = model.train_cfg, model.test_cfg
    train.rpn.sampler.num = r["rpn_sampler_num"]
    train.rpn_proposal.nms_pre, train.rpn_proposal.max_per_img = r["rpn_nms_pre"], r["rpn_max_per_img"]
    train.rcnn.sampler.num = r["rcnn_sampler_num"]
    test.rpn.nms_pre, test.rpn.max_per_img = r["test_rpn_nms_pre"], r["test_rpn_max_per_img"]
    test.rcnn.max_per_img = r["test_max_per_img"]

    _set_pipeline_size(cfg.train_dataloader.dataset.pipeline, size, r, "train")
    _set_pipeline_size(cfg.test_dataloader.dataset.pipeline, size, r, "test")
    root = str(Path(coco_root).resolve()) + "/"
    dataset_type = "SynthScenesCocoDataset" if synthscenes else "CheckedCocoDataset"
    if r["batch_size"] % world_size:
        raise RecipeError(f"coco.batch_size {r['batch_size']} is not divisible by {world_size} processes")
    workers = r["num_workers"]
    for loader, batch in ((cfg.train_dataloader, r["batch_size"] // world_size), (cfg.test_dataloader, None)):
        loader.dataset.type, loader.dataset.data_root = dataset_type, root
        loader.batch_size = batch or r["test_batch_size"]
        loader.num_workers, loader.persistent_workers = workers, workers > 0
    cfg.train_dataloader.sampler.seed = seed
    cfg.test_evaluator.ann_file = root + "annotations/instances_val2017.json"
    cfg.test_evaluator.outfile_prefix = str(Path(work_dir) / "coco_results")

    amp = on_gpu and r["precision"] == "auto"
    cfg.optim_wrapper.type = "AmpOptimWrapper" if amp else "OptimWrapper"
    cfg.optim_wrapper.paramwise_cfg.layer_decay = r["layer_decay"]
    opt = cfg.optim_wrapper.optimizer
    opt.lr, opt.betas, opt.weight_decay = r["lr"], tuple(r["betas"]), r["weight_decay"]
    cfg.train_cfg.max_iters = cfg.train_cfg.val_interval = r["max_iters"]
    warmup, steps = cfg.param_scheduler
    warmup.start_factor, warmup.end = r["warmup_start_factor"], r["warmup_iters"]
    steps.end, steps.milestones, steps.gamma = r["max_iters"], r["lr_steps"], r["lr_gamma"]
    if r["warmup_iters"] == 0:
        cfg.param_scheduler = [steps]
    hooks = cfg.default_hooks
    hooks.logger.interval = r["log_interval"]
    hooks.checkpoint = (
        dict(hooks.checkpoint, interval=r["checkpoint_interval"]) if r["checkpoint_interval"] else None
    )
    cfg.log_processor.window_size = r["log_interval"]
    cfg.work_dir = str(work_dir)
    cfg.randomness = dict(seed=seed)
    cfg.env_cfg = dict(cfg.env_cfg, cudnn_benchmark=False)
    return cfg


# ---------------------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------------------
def run_coco(inputs: ProtocolInputs) -> dict[str, Any]:
    """Fine-tune Mask R-CNN on ``coco_root/train2017`` for the recipe's iterations, then evaluate once on
    ``coco_root/val2017`` with mmdet's ``CocoMetric``.

    ``budget_cfg['coco']`` holds the recipe; ``recipe`` names a detector protocol (``vitdet`` |
    ``fpn_li2021``) other than the budget's, or a method's recipe (``downstream.recipe``). Returns a
    ``downstream.result`` dict: ``metrics`` ``AP_box``, ``AP_mask`` and their AP50/AP75 in %, ``history``
    (the loss of each iteration), ``protocol_detail``. ``hooks`` are added to the Runner.
    """
    encoder_path, budget_cfg, coco_root, work_dir, seed, recipe = inputs.where()
    progress, device, hooks = inputs.progress, inputs.device, inputs.hooks
    launcher, log_level = inputs.launcher, inputs.log_level
    from mmengine.dist import get_dist_info

    start = time.perf_counter()
    r = recipes.resolve_recipe(budget_cfg, PROTOCOL, recipe)
    on_gpu = check_device(device, "COCO fine-tuning") == "cuda"
    _, world_size = get_dist_info()
    synthscenes = str(budget_cfg.get("data", {}).get("name", "")).startswith("synthscenes")
    arch = encoder_arch(encoder_path)
    work_dir = Path(work_dir)
    cfg = detector_config(
        r,
        encoder_path=encoder_path,
        arch=arch,
        coco_root=coco_root,
        work_dir=work_dir,
        seed=seed,
        synthscenes=synthscenes,
        world_size=world_size,
        on_gpu=on_gpu,
    )
    cfg.launcher = launcher
    cfg.log_level = log_level
    cfg.experiment_name = f"coco-{r['protocol']}-seed{seed}"
    # a fresh visualizer per run: mmengine keeps one instance per name for the whole process
    cfg.visualizer = dict(cfg.visualizer, name=f"{cfg.experiment_name}-{time.time_ns()}")
    hook = DenseRunHook("COCO fine-tuning", progress, desc=f"COCO {r['protocol']} seed {seed}")
    run = train_then_test(cfg, hook, start=start, scope="mmdet", hooks=hooks)
    runner, raw, report = run.runner, run.scores, run.load_report
    # pycocotools prints its summary tables on stdout: they go to a file beside the run's logs
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / "coco_eval.txt").write_text(run.stdout)
    # CocoMetric returns nothing when the detector kept no box above its score threshold on any val image
    # (it logs "The testing results of the whole dataset is empty"): no detection is AP 0, not a failure.
    no_detections = not raw
    missing = [k for k in METRIC_KEYS if k not in raw]
    if missing and not no_detections:
        raise RuntimeError(f"mmdet's CocoMetric returned no {missing} (got {sorted(raw)})")
    metrics = {name: 100.0 * float(raw.get(key, 0.0)) for key, name in METRIC_KEYS.items()}
    train_set, test_set = runner.train_dataloader.dataset, runner.test_dataloader.dataset
    recipe_used = {**r, "world_size": world_size, "per_gpu_batch": r["batch_size"] // world_size}
    return ProtocolResult(
        PROTOCOL,
        seed,
        metrics,
        recipe=recipe_used,
        load_report=copy.deepcopy(report),
        timings=run.timings,
        data=dict(
            root=str(coco_root),
            dataset=type(test_set).__name__,
            num_train=len(train_set),
            num_val=len(test_set),
            classes=list(test_set.metainfo["classes"]),
            no_detections=no_detections,
        ),
        world_size=world_size,
        batch_size=r["batch_size"],
        precision="fp16-amp" if cfg.optim_wrapper.type == "AmpOptimWrapper" else "fp32",
        device="cuda" if on_gpu else "cpu",
        final=FinalStep(
            iteration=r["max_iters"], train_loss=hook.losses[-1] if hook.losses else None, metrics=metrics
        ),
        history=hook.losses,
        protocol_detail=(
            f"COCO: {PROTOCOLS[r['protocol']][1]}, LSJ {r['image_size']} px "
            f"(x{r['lsj_ratio_range'][0]}-{r['lsj_ratio_range'][1]}), window {r['window_size']} with global "
            f"blocks {r['global_blocks']}, {r['max_iters']} it x batch {r['batch_size']}, layer decay "
            f"{r['layer_decay']}; AP from mmdet's CocoMetric (pycocotools)"
        ),
    ).to_dict()
