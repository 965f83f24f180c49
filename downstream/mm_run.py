"""What the dense protocols (ADE20K through mmseg, COCO through mmdet) share around mmengine's ``Runner``: the
device check, a hook that guards and records the run, and train-then-test with timings.

    from downstream.mm_run import DenseRunHook, check_device, train_then_test
"""

from __future__ import annotations

import contextlib
import io
import math
import sys
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if is_model_wrapper(model) else model


def check_device(device: str | torch.device | None, what: str) -> str:
    """The device mmengine's Runner will use (it places the model itself: CUDA when visible). A request for
    another device type is refused, naming the protocol ``what``."""
    from mmengine.device import get_device

    placed = get_device()
    if device is not None and torch.device(device).type != torch.device(placed).type:
        raise ValueError(
            f"{what}: mmengine's Runner runs on {placed!r}, not {str(device)!r} "
            "(hide the GPUs with CUDA_VISIBLE_DEVICES= to run on the CPU)"
        )
    return placed


class DenseRunHook(Hook):
    """Checks that the loaded encoder is still intact at the first step (nothing re-initialised it after the
    strict loader), records the training loss, stops on a non-finite loss naming the iteration, and shows a
    progress bar over iterations."""

    priority = "LOW"

    def __init__(self, what: str, progress: bool = True, desc: str | None = None) -> None:
        self.what, self.progress, self.desc = what, progress, desc or what
        self.losses: list[float] = []
        self._bar = None

    def before_train(self, runner) -> None:
        from downstream.optim import find_vit
        from methods.backbone import tensors_sha256

        backbone = unwrap(runner.model).backbone
        report = getattr(backbone, "load_report", None)
        if report is not None:
            _, vit = find_vit(backbone)
            if tensors_sha256(vit.state_dict()) != report["sha256"]:
                raise RuntimeError(
                    f"{self.what}: the encoder's weights changed between loading and the first step"
                )
        if self.progress and runner.rank == 0:
            from tqdm import tqdm

            self._bar = tqdm(total=runner.max_iters, desc=self.desc, unit="it", leave=False, file=sys.stderr)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        loss = float(torch.as_tensor(outputs["loss"]).detach()) if outputs and "loss" in outputs else math.nan
        if not math.isfinite(loss):
            raise FloatingPointError(f"{self.what}: loss is {loss} at iteration {runner.iter + 1}")
        self.losses.append(loss)
        if self._bar is not None:
            lr = runner.optim_wrapper.optimizer.param_groups[-1]["lr"]
            self._bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}", refresh=False)
            self._bar.update(1)

    def after_train(self, runner) -> None:
        if self._bar is not None:
            self._bar.close()


@dataclass
class DenseRun:
    """A finished run: the Runner, the test scores, the hook, timings in seconds and captured stdout."""

    runner: Any
    scores: dict[str, Any]
    hook: DenseRunHook
    timings: dict[str, float] = field(default_factory=dict)
    stdout: str = ""

    @property
    def load_report(self) -> dict[str, Any]:
        """The strict loader's report; the adapter always loads the file it is given, so none is an error."""
        report = getattr(unwrap(self.runner.model).backbone, "load_report", None)
        if report is None:
            raise RuntimeError(
                f"{self.hook.what}: the backbone holds no load report (its init_weights did not run)"
            )
        return report


def train_then_test(
    cfg: Config,
    hook: DenseRunHook,
    *,
    start: float,
    scope: str | None = None,
    ignore_warnings: Iterable[str] = (),
    hooks: Iterable[Hook] = (),
) -> DenseRun:
    """Build the Runner from ``cfg``, train it with ``hook`` registered, then test once (no selection).

    ``scope``: the registry default scope to build in (mmdet's registries are not mmengine's default);
    ``ignore_warnings``: the library's notices about its own defaults; stdout during the test (pycocotools'
    summary tables) is captured into ``DenseRun.stdout``. ``start`` is when the run began (setup time).
    ``hooks``: more hooks to register (the golden traces record every iteration through one)."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    scoped = DefaultScope.overwrite_default_scope(scope) if scope else contextlib.nullcontext()
    with scoped, warnings.catch_warnings():
        for message in ignore_warnings:
            warnings.filterwarnings("ignore", message=message)
        runner = Runner.from_cfg(cfg)
        for h in (hook, *hooks):
            runner.register_hook(h)
        train_start = time.perf_counter()
        runner.train()
        test_start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()) as captured:
            scores = runner.test() or {}
        end = time.perf_counter()
    timings = dict(
        setup_s=train_start - start,
        train_s=test_start - train_start,
        test_s=end - test_start,
        total_s=end - start,
    )
    return DenseRun(runner, dict(scores), hook, timings, captured.getvalue())
