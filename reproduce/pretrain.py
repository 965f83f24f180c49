"""Pretrain one method under one budget, then export its encoder and write its result record.

    python reproduce/pretrain.py --method mae --budget micro [--work-dir DIR] [--resume] [--seed N]
    torchrun --nproc-per-node 8 reproduce/pretrain.py --method mae --budget base-800e --launcher pytorch \
        --data-root /datasets

The run is an mmengine Runner: progress and ETA in the log every ``pretrain.log_interval`` steps, scalars in
``<work-dir>/<timestamp>/vis_data/scalars.json``, atomic checkpoints every ``checkpoint_interval_epochs``
epochs, auto-resume with ``--resume``. At the end it writes ``encoder.pth`` (timm keys + metadata; the format
every protocol loads with ``methods.encoder_file.load_encoder``) and a ``pretrain`` result record.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from mmengine.config import Config, DictAction
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS
from mmengine.runner import Runner

import methods
from downstream import optim as _optim  # noqa: F401  (registers WarmupCosineLrHook, MAE's lr schedule)
from downstream.datasets.imagenet import ImageFolderDataset
from downstream.mm_run import unwrap
from methods.atomic import stale_temporaries
from methods.base import PARAMWISE_CFG
from methods.cost import FLOPS_UNIT, count_flops
from methods.encoder_file import export_encoder
from methods.registry import get_spec
from reproduce import budget as budgets
from reproduce import clip_teacher_files as clip_teachers
from reproduce import data_root
from reproduce.code_key import code_hash, training_modules
from reproduce.harness import init_cpu_process_group, train  # also registers the loop, hooks, backend
from reproduce.pretrain_data import CropBatch, DecodedImages, KeyedViews, PretrainDataset
from reproduce.provenance import provenance, stable_hash
from tables.records import Record, read_record, record_path, write_record

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", required=True, help="a method or variant name (methods.list_methods())")
    p.add_argument("--budget", default="micro", help="budget name in reproduce/budgets/ or a config path")
    p.add_argument(
        "--work-dir",
        default=None,
        help="run folder (default: <work-root>/<budget>/<method>/seed<N>/<run key>)",
    )
    p.add_argument(
        "--work-root",
        default=None,
        help="root of run folders (<root>/<budget>/<method>/seed<N>/<run key>) and of result records "
        "(<root>/records/...); default: the --work-dir when one is given (its records stay with it), "
        "else work_dirs/ in the repository",
    )
    p.add_argument("--seed", type=int, default=0, help="pretraining seed (data order, crops, masks, init)")
    p.add_argument("--resume", action="store_true", help="resume from the run folder's last checkpoint")
    p.add_argument(
        "--reuse",
        action="store_true",
        help="return at once if the run folder already holds a finished run with this run key",
    )
    p.add_argument(
        "--data-root",
        default=None,
        help="dataset root: real data for small/base (README.md, Real datasets); at micro/tiny a folder that "
        "already holds the budget's SynthScenes dataset (default: generated under data/)",
    )
    p.add_argument(
        "--launcher",
        default="none",
        choices=["none", "pytorch", "slurm"],
        help="mmengine launcher for multi-process runs (torchrun: pytorch)",
    )
    p.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="stop after this many steps (smoke runs; the record says so)",
    )
    p.add_argument(
        "--exit-after-step",
        type=int,
        default=None,
        help="testing aid: end the process abruptly after this step (and its checkpoint)",
    )
    p.add_argument(
        "--cfg-options",
        nargs="+",
        action=DictAction,
        default={},
        metavar="KEY=VALUE",
        help="override budget keys (e.g. pretrain.batch_size=32); recorded in the config hash",
    )
    return p.parse_args(argv)


@HOOKS.register_module()
class ThroughputHook(Hook):
    """Images per second over the run, excluding the first steps (warm-up of allocators and kernels)."""

    priority = "LOW"

    def __init__(self, global_batch: int, skip: int = 2) -> None:
        self.global_batch, self.skip = global_batch, skip
        self.start: float | None = None
        self.steps = 0

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if self.start is None:
            self.skip -= 1
            if self.skip <= 0:
                self.start = time.perf_counter()
            return
        self.steps += 1

    def images_per_s(self) -> float | None:
        if self.start is None or self.steps == 0:
            return None
        return self.steps * self.global_batch / (time.perf_counter() - self.start)


def measure_step_flops(model: torch.nn.Module, batch: int, img_size: int) -> int:
    """FLOPs of one training step (forward, backward, every extra forward) on a batch of ``batch`` images.
    Runs on a deep copy so that nothing (EMA state, optimizer) of the real model is touched."""
    probe = copy.deepcopy(model).train()
    images = torch.randn(batch, 3, img_size, img_size)
    ids = torch.arange(batch)

    def step():
        losses = probe.loss(images, sample_ids=ids)
        sum(v for k, v in losses.items() if "loss" in k).backward()
        probe.after_train_step()

    return count_flops(step)


def run_key(config_dump: dict[str, Any], method: str, manifest_hash: str) -> str:
    """Identity of a pretraining run: config (budget, method config, seed, overrides) + the code the method
    trains with (``reproduce.code_key``: its imports, not comments or docstrings) + dataset. Equal keys mean
    an existing checkpoint may be reused; anything else retrains."""
    return stable_hash({"config": config_dump, "code": training_code_hash(method), "data": manifest_hash})


def training_code_hash(method: str) -> str:
    return code_hash(training_modules(get_spec(method).cls.__module__))


def finished_run(
    work_dir: Path, key: str, records_dir: str | Path, budget: str, method: str, seed: int
) -> PretrainResult | None:
    """The result of a finished run with this key in ``work_dir`` (encoder and record present), else None."""
    from methods.encoder_file import read_encoder

    encoder, record = work_dir / "encoder.pth", record_path(records_dir, budget, method, "pretrain", seed)
    if not (encoder.is_file() and record.is_file()):
        return None
    if read_encoder(encoder)["meta"].get("run_key") != key or read_record(record).extra.get("run_key") != key:
        return None
    return PretrainResult(work_dir, encoder, record, key, reused=True)


def pretrain_data(pre: Any, train_set: ImageFolderDataset, key: str, img_size: int, seed: int) -> dict:
    """The dataset and collate of the budget's data path: ``pretrain.in_memory`` (the small budgets) decodes
    the split once and crops whole batches at a time; otherwise every view is read from its file."""
    if pre.in_memory:
        images = DecodedImages(train_set, key)
        views = KeyedViews(images, pre.crop_scale, pre.hflip, seed=seed)
        return dict(dataset=views, collate_fn=CropBatch(images, img_size))
    dataset = PretrainDataset(train_set, img_size, pre.crop_scale, pre.hflip, seed=seed)
    return dict(dataset=dataset, collate_fn=dict(type="default_collate"))


def expected_world_size(launcher: str) -> int:
    """Processes in this run, known before mmengine initialises the process group (torchrun and slurm
    export it), so the per-process batch can be fixed in the dataloader config."""
    if launcher == "pytorch":
        return int(os.environ.get("WORLD_SIZE", 1))
    if launcher == "slurm":
        return int(os.environ.get("SLURM_NTASKS", 1))
    return 1


@dataclass(frozen=True)
class PretrainResult:
    """What a pretraining run leaves: its folder, the exported encoder and its ``pretrain`` record."""

    run_dir: Path
    encoder: Path
    record: Path
    run_key: str
    reused: bool = False  # a finished run with the same key was found; nothing trained


def main(argv: list[str] | None = None) -> PretrainResult:
    return run(parse_args(argv))


def run(args: argparse.Namespace, hooks: Sequence[Hook] = ()) -> PretrainResult:
    """The command line: check the method name, load the budget (with ``--cfg-options``), prepare its dataset,
    then ``pretrain``."""
    get_spec(args.method)  # an unknown name stops here, before the dataset is prepared
    cfg = budgets.load_budget(args.budget)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    return pretrain(
        cfg,
        args.method,
        seed=args.seed,
        data=data_root.prepare(cfg, args.data_root),
        work_root=Path(args.work_root or args.work_dir or ROOT / "work_dirs"),
        work_dir=Path(args.work_dir) if args.work_dir else None,
        resume=args.resume,
        reuse=args.reuse,
        max_steps=args.max_steps,
        exit_after_step=args.exit_after_step,
        launcher=args.launcher,
        hooks=hooks,
    )


def pretrain(
    cfg: Config,
    method: str,
    *,
    seed: int = 0,
    data: data_root.DataRoot,
    work_root: Path,
    work_dir: Path | None = None,
    resume: bool = False,
    reuse: bool = False,
    max_steps: int | None = None,
    exit_after_step: int | None = None,
    launcher: str = "none",
    hooks: Sequence[Hook] = (),
) -> PretrainResult:
    """Pretrain ``method`` under the resolved budget ``cfg`` on ``data`` (a prepared ``DataRoot``).

    The run folder defaults to ``<work_root>/<budget>/<method>/seed<N>/<run key>``; records go under
    ``work_root``. ``reuse`` returns a finished run with the same key at once; ``resume`` continues from the
    folder's last checkpoint. ``hooks`` are added to the Runner (the golden traces record every step through
    one)."""
    method_cfg = methods.method_config(method)
    budgets.check_method_config(method, method_cfg, cfg)
    pre = cfg.pretrain
    # A method with a CLIP teacher (CMT-MAE) gets the budget's trained teacher (built first when missing) or
    # the released file; other methods get None and nothing below changes for them.
    teacher = clip_teachers.teacher_inputs(method, cfg, method_cfg, str(work_root), data)
    # The dataset enters the run key by its manifest hash (run_key's "data"), not by the folder it was read
    # from: the same data under another --data-root reuses the run. (The Runner's config dump keeps the path.)
    budget_dump = cfg.to_dict()
    budget_dump["data"] = {k: v for k, v in budget_dump.get("data", {}).items() if k != "root"}
    config_dump = {
        "budget": budget_dump,
        "method": method,
        "method_config": method_cfg,
        "seed": seed,
        "max_steps": max_steps,
        **({"teacher_key": teacher.key} if teacher else {}),
    }
    key = run_key(config_dump, method, data.manifest_hash)
    work_dir = work_dir or Path(work_root) / cfg.budget / method / f"seed{seed}" / key
    if reuse and (previous := finished_run(work_dir, key, work_root, cfg.budget, method, seed)):
        print_log(f"pretrain: reusing {previous.encoder} (run key {key})", logger="current")
        return previous
    if resume:  # what a kill during a checkpoint save left behind
        for tmp in stale_temporaries(work_dir):
            tmp.unlink()
            print_log(f"pretrain: removed {tmp}, left by an interrupted save", logger="current")
    train_set = ImageFolderDataset(data.imagenet, split="train")
    torch.manual_seed(seed)  # the initial weights; every process builds the same ones
    model = budgets.build_model(method, cfg, **({"teacher_file": str(teacher.path)} if teacher else {}))
    model.seed = seed

    # Cost per image, measured before training (it also decides the step count under equalize='flops').
    probe_batch = 8
    flops_per_image = measure_step_flops(model, probe_batch, model.img_size) / probe_batch
    cost_ratio = 1.0
    if pre.equalize == "flops":
        reference = budgets.build_model("mae", cfg)
        cost_ratio = flops_per_image / (
            measure_step_flops(reference, probe_batch, model.img_size) / probe_batch
        )
    # The schedules (lr, EMA, every method's own) follow the planned run; --max-steps only stops it early.
    planned_steps, steps_per_epoch = budgets.steps_for(pre, len(train_set), cost_ratio)
    steps = min(planned_steps, max_steps) if max_steps else planned_steps
    momentum = budgets.ema_momentum(pre.ema, planned_steps)
    model.teacher_momentum = momentum

    world_size = expected_world_size(launcher)
    if pre.batch_size % world_size:
        raise budgets.BudgetError(
            f"pretrain.batch_size {pre.batch_size} is not divisible by {world_size} processes"
        )
    lr = budgets.learning_rate(pre)
    on_gpu = torch.cuda.is_available()
    precision = "bf16-autocast" if (pre.precision == "auto" and on_gpu) else "fp32"
    distributed_cpu = launcher != "none" and not on_gpu
    if distributed_cpu:
        init_cpu_process_group()
    runner = Runner(
        model=model,
        work_dir=str(work_dir),
        experiment_name=f"{cfg.budget}-{method}-seed{seed}",
        train_dataloader=dict(
            **pretrain_data(pre, train_set, data.manifest_hash, model.img_size, seed),
            sampler=dict(
                type="KeyedInfiniteSampler",
                seed=seed,
                shuffle=True,
                batch_size=pre.batch_size // world_size,
            ),
            batch_size=pre.batch_size // world_size,
            num_workers=pre.num_workers,
            persistent_workers=pre.num_workers > 0,
        ),
        train_cfg=dict(type="StepLoop", max_iters=steps),
        optim_wrapper=dict(
            type="AmpOptimWrapper" if precision != "fp32" else "OptimWrapper",
            **({"dtype": "bfloat16"} if precision != "fp32" else {}),
            optimizer=dict(type="AdamW", lr=lr, betas=tuple(pre.betas), weight_decay=pre.weight_decay),
            # The official MAE split (no decay on 1-D parameters and biases; tokens decayed), mmengine-native.
            paramwise_cfg=PARAMWISE_CFG,
        ),
        # MAE's adjust_learning_rate per step (linear warm-up from 0, half-cycle cosine to min_lr), a pure
        # function of the step: the curve of the planned run, also when --max-steps stops it early
        param_scheduler=None,
        default_hooks=dict(
            checkpoint=dict(
                type="CheckpointHook",
                by_epoch=False,
                max_keep_ckpts=2,
                save_last=True,
                interval=pre.checkpoint_interval_epochs * steps_per_epoch,
                backend_args=dict(backend="atomic_local"),
            ),
            logger=dict(type="LoggerHook", interval=pre.log_interval),
        ),
        custom_hooks=[
            dict(type="NonFiniteLossHook"),
            dict(
                type="WarmupCosineLrHook",
                lr=lr,
                min_lr=pre.min_lr,
                warmup_epochs=pre.warmup_epochs,
                epochs=planned_steps / steps_per_epoch,
                steps_per_epoch=steps_per_epoch,
            ),
            dict(type="MethodStepHook", steps_per_epoch=steps_per_epoch, planned_steps=planned_steps),
            dict(type="ThroughputHook", global_batch=pre.batch_size),
            *([dict(type="ExitAfterStepHook", step=exit_after_step)] if exit_after_step else []),
        ],
        log_processor=dict(by_epoch=False, window_size=pre.log_interval),
        randomness=dict(seed=seed, deterministic=True),
        resume=resume,
        launcher=launcher,
        # Runner reads the DDP wrapper from its cfg; the cfg is also dumped into the run folder. Without yapf:
        # mmengine re-formats it on every dump, log and checkpoint (~2 s each on a 2-core machine).
        cfg=Config(
            dict(
                budget=cfg.to_dict(),
                method=method,
                method_config=method_cfg,
                model_wrapper_cfg=dict(type="CPUDistributedDataParallel", broadcast_buffers=False)
                if distributed_cpu
                else None,
            ),
            format_python_code=False,
        ),
        env_cfg=dict(dist_cfg=dict(backend="nccl" if on_gpu else "gloo")),
        default_scope="mmengine",
    )
    for hook in hooks:
        runner.register_hook(hook)
    wall_start = time.perf_counter()
    train(runner)
    wall = time.perf_counter() - wall_start

    model = unwrap(runner.model)
    throughput = next(h for h in runner.hooks if isinstance(h, ThroughputHook)).images_per_s()
    prov = provenance(
        config=config_dump,
        dataset_manifest_hash=data.manifest_hash,
        world_size=world_size,
        batch_size=pre.batch_size,
        precision=precision,
        seed=seed,
        code_hash=training_code_hash(method),
        run_key=key,
    )
    meta = {
        "method": method,
        "budget": cfg.budget,
        "budget_model": dict(cfg.model),
        "steps": steps,
        "teacher_momentum": momentum,
        "run_key": key,
        "provenance": prov,
    }
    encoder_path = work_dir / "encoder.pth"
    record_file = record_path(work_root, cfg.budget, method, "pretrain", seed)
    if is_main_process():
        encoder_sha256 = export_encoder(model, encoder_path, meta)
        images = steps * pre.batch_size
        record = Record(
            budget=cfg.budget,
            method=method,
            protocol="pretrain",
            seed=seed,
            metrics={"final_loss": float(runner.message_hub.get_scalar("train/loss").current())},
            cost={
                "flops_per_image": flops_per_image,
                "flops_unit": FLOPS_UNIT,
                "images_per_s": throughput,
                "train_images": images,
                "total_flops": flops_per_image * images,
                "wall_s": wall,
                "steps": steps,
                "cost_ratio_vs_mae": cost_ratio,
                # a method's own extra costs, e.g. its teacher's training (teacher_total_flops, Table 1)
                **model.extra_cost,
            },
            provenance=prov,
            extra={
                "encoder": str(encoder_path),
                "encoder_sha256": encoder_sha256,
                "run_key": key,
                "teacher_momentum": momentum,
                "lr": lr,
                "steps_per_epoch": steps_per_epoch,
                "planned_steps": planned_steps,
                "max_steps_override": max_steps,
                # an ablation (a method's config.py 'ablations') is a row only of the tables that name it
                "ablation": get_spec(method).ablation,
                "ablation_of": get_spec(method).base if get_spec(method).ablation else None,
                **model.extra_record,
            },
        )
        write_record(record, work_root)
        print_log(f"pretrain done: {encoder_path}, {record_file}", logger="current", level=logging.INFO)
    return PretrainResult(work_dir, encoder_path, record_file, key)


if __name__ == "__main__":
    from reproduce import cli

    cli.run(main)
