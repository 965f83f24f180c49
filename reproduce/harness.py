"""mmengine pieces of the pretraining harness: the step loop, the hooks and atomic checkpoint writes.

- ``StepLoop``: mmengine's iteration loop, but on resume it moves the sampler to the resumed step instead
  of loading and discarding every batch already trained on.
- ``MethodStepHook``: tells the model where training is (``set_progress``) before each step, and calls
  ``after_train_step`` (EMA teachers update there) after each optimizer step.
- ``train``: ``runner.train()``, with a file that stops reading mid-run reported like a NaN loss.
- ``NonFiniteLossHook``: stops the run at the first NaN/inf loss, naming the step and the last good
  checkpoint. The hook runs before any checkpoint is written, so a bad step is never saved.
- ``AtomicLocalBackend``: checkpoints and the ``last_checkpoint`` pointer are written to a temporary file
  and renamed, so a crash never leaves a truncated checkpoint that looks complete.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from mmengine.fileio.backends import LocalBackend, register_backend
from mmengine.hooks import Hook
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import HOOKS, LOOPS, MODEL_WRAPPERS
from mmengine.runner import Runner
from mmengine.runner.loops import IterBasedTrainLoop, _InfiniteDataloaderIterator

from downstream.datasets.errors import DatasetError, raised_message
from downstream.mm_run import unwrap
from methods.atomic import atomic_write_bytes
from reproduce.pretrain_data import KeyedInfiniteSampler  # noqa: F401  (registered with the loop it serves)


@register_backend("atomic_local")
class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend with atomic ``put``/``put_text`` (temporary file + rename)."""

    def put(self, obj: bytes, filepath) -> None:
        atomic_write_bytes(filepath, obj)

    def put_text(self, obj: str, filepath, encoding: str = "utf-8") -> None:
        atomic_write_bytes(filepath, obj.encode(encoding))


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """mmengine's DDP wrapper for CPU processes (gloo). The Runner always passes ``device_ids=[LOCAL_RANK]``,
    which torch's DDP rejects for a module on the CPU."""

    def __init__(self, module, device_ids=None, **kwargs) -> None:
        super().__init__(module=module, device_ids=None, **kwargs)


def init_cpu_process_group() -> None:
    """Start the gloo process group for a CPU multi-process run (torchrun sets the rendezvous variables).
    mmengine's own init calls ``torch.cuda.set_device`` first and so fails on a machine without a GPU; it is
    skipped when a group already exists."""
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")


@LOOPS.register_module()
class StepLoop(IterBasedTrainLoop):
    """IterBasedTrainLoop whose resume seeks the sampler (``set_start_step``) instead of replaying data."""

    def run(self):
        sampler = self.dataloader.batch_sampler.sampler
        if self._iter > 0:
            sampler.set_start_step(self._iter)
        # The iterator built in __init__ may already have started workers on step 0: rebuild it.
        self.dataloader_iterator = _InfiniteDataloaderIterator(self.dataloader)
        self.runner.call_hook("before_train")
        self.runner.call_hook("before_train_epoch")
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()
            self.run_iter(next(self.dataloader_iterator))
        self.runner.call_hook("after_train_epoch")
        self.runner.call_hook("after_train")
        return self.runner.model


@HOOKS.register_module()
class MethodStepHook(Hook):
    """The method's side of every step (the ``MIMModel`` contract): ``set_progress`` before it, so every
    schedule inside a method (EMA momentum, curriculum, stage switches) is a pure function of the step and
    resume needs no hook state, and ``after_train_step`` after it (the EMA updates)."""

    priority = "ABOVE_NORMAL"

    def __init__(self, steps_per_epoch: int, planned_steps: int | None = None) -> None:
        self.steps_per_epoch = int(steps_per_epoch)
        self.planned_steps = planned_steps  # the full run's length when a smoke run stops early

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        max_steps = self.planned_steps or runner.train_loop.max_iters
        unwrap(runner.model).set_progress(
            step=runner.iter,
            max_steps=max_steps,
            epoch=runner.iter // self.steps_per_epoch,
            max_epochs=math.ceil(max_steps / self.steps_per_epoch),
        )

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        unwrap(runner.model).after_train_step()


def last_checkpoint(work_dir: str | Path) -> str | None:
    pointer = Path(work_dir) / "last_checkpoint"
    if pointer.is_file():
        path = pointer.read_text().strip()
        if path and Path(path).is_file():
            return path
    return None


def train(runner: Runner) -> None:
    """``runner.train()``; a dataset file that stops reading during the run (changed or removed after the
    check before the run) stops it with one line naming the file, the step and the last good checkpoint."""
    try:
        runner.train()
    except DatasetError as exc:
        last = last_checkpoint(runner.work_dir) or "none (no checkpoint was written yet)"
        raise DatasetError(
            f"{raised_message(exc)}; training stopped at step {runner.iter + 1}, the last good checkpoint is "
            f"{last}: fix the file, then run again with --resume"
        ) from None


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop at the first non-finite loss with the step and the last good checkpoint in the message."""

    priority = "HIGHEST"

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        values = {k: float(v.detach() if hasattr(v, "detach") else v) for k, v in (outputs or {}).items()}
        bad = {k: v for k, v in values.items() if "loss" in k and not math.isfinite(v)}
        if bad:
            last = last_checkpoint(runner.work_dir) or "none (no checkpoint was written yet)"
            raise FloatingPointError(
                f"non-finite loss at step {runner.iter + 1}: {bad}. Training stopped; the last good "
                f"checkpoint is {last}. Resume from it with --resume (e.g. after lowering the lr)."
            )


@HOOKS.register_module()
class ExitAfterStepHook(Hook):
    """Testing aid for crash recovery: end the process abruptly (``os._exit``, as a kill would) right after
    the given step and its checkpoint have been written."""

    priority = "LOWEST"  # after CheckpointHook

    def __init__(self, step: int) -> None:
        self.step = int(step)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 == self.step:
            os._exit(3)
