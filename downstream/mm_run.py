"""What the protocols that run mmengine's ``Runner`` share (ADE20K through mmseg, COCO through mmdet, the
IN-1K fine-tune): the device check, quiet logging (``quiet_console``: the log files keep everything, the
console shows warnings, once), a hook that guards, records and shows the run, and train-then-test with
timings. ``unwrap`` (a model inside its DDP wrapper) serves the pretraining harness too.

    from downstream.mm_run import DenseRunHook, check_device, train_then_test
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from downstream.progress import progress_bar


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside mmengine's (DDP) wrapper, or the model itself."""
    return model.module if is_model_wrapper(model) else model


def quiet_mmengine() -> None:
    """mmengine logs one line per parameter group and per hook; a table run shows its own progress lines."""
    from mmengine.logging import MMLogger

    MMLogger.get_instance("mmengine", log_level="WARNING")
    logging.getLogger("mmengine").setLevel(logging.WARNING)


#: mmengine warnings every run of this harness meets by design, with nothing for a user to do: they stay in
#: the log files. Frozen parameters are left out of the optimizer, one warning each: the sin-cos position
#: embeddings (buffers-as-parameters, MAE's) and the teachers and momentum encoders of RC-MAE, HPM and
#: CMT-MAE (over a hundred lines for one CMT-MAE pretraining). The checkpoint hook still goes through
#: mmengine's deprecated file client; the lr schedule is a hook (MAE's per-step cosine), so the Runner has
#: no scheduler to save.
EXPECTED_WARNINGS = (
    "is skipped since its requires_grad=False",
    '"FileClient" will be deprecated in future',
    '"HardDiskBackend" is the alias of "LocalBackend"',
    "`save_param_scheduler` is True but `self.param_schedulers` is None",
)


class _Once(logging.Filter):
    """Lets each distinct message through once, whichever logger (every Runner has its own) sends it, and
    none of ``EXPECTED_WARNINGS``."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[int, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.levelno, record.getMessage())
        if key in self.seen or any(expected in key[1] for expected in EXPECTED_WARNINGS):
            return False
        self.seen.add(key)
        return True


def _console_handlers(logger: logging.Logger) -> list[logging.Handler]:
    """The handlers of ``logger`` that write to a terminal stream (not to a file)."""
    return [
        h
        for h in logger.handlers
        if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
    ]


@contextlib.contextmanager
def quiet_console(level: int = logging.WARNING) -> Iterator[None]:
    """While open, every mmengine Runner built (pretraining, the Runner-based protocols) keeps its log file
    in its work dir as it is, but its console shows only ``level`` and above, each distinct message once
    across all Runners (mmengine dedupes per Runner); a Python warning with the same category and text is
    also shown once. The config dump, environment, hook order and per-parameter-group lines go to the log
    files only, as does what mmengine prints while it looks for a checkpoint to resume ('Did not find
    last_checkpoint to be resumed.'). Everything is restored on exit."""
    from mmengine.logging import MMLogger
    from mmengine.runner import Runner

    once = _Once()
    changed: list[tuple[logging.Handler, int]] = []

    def quiet(logger: logging.Logger) -> None:
        for handler in _console_handlers(logger):
            if once not in handler.filters:
                changed.append((handler, handler.level))
                handler.setLevel(max(handler.level, level))
                handler.addFilter(once)

    build_logger, load_or_resume = Runner.build_logger, Runner.load_or_resume

    def quiet_build_logger(self, *args: Any, **kwargs: Any) -> MMLogger:
        logger = build_logger(self, *args, **kwargs)
        quiet(logger)
        return logger

    def logged_load_or_resume(self, *args: Any, **kwargs: Any) -> Any:
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                return load_or_resume(self, *args, **kwargs)
        finally:
            for line in filter(None, printed.getvalue().splitlines()):
                self.logger.info(line)

    shown = warnings.showwarning
    seen: set[tuple[type, str]] = set()

    def showwarning(message, category, *args: Any, **kwargs: Any) -> None:
        if (category, str(message)) not in seen:
            seen.add((category, str(message)))
            shown(message, category, *args, **kwargs)

    quiet(MMLogger.get_current_instance())  # print_log(logger='current') before any Runner
    Runner.build_logger, Runner.load_or_resume = quiet_build_logger, logged_load_or_resume
    warnings.showwarning = showwarning
    try:
        yield
    finally:
        Runner.build_logger, Runner.load_or_resume = build_logger, load_or_resume
        if warnings.showwarning is showwarning:
            warnings.showwarning = shown
        for handler, previous in changed:
            handler.setLevel(previous)
            handler.removeFilter(once)


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


class RunHook(Hook):
    """Guards and shows an mmengine training run: at the first step, the weights ``checked_weights`` names
    must still be the ones loaded (nothing re-initialised them after the strict loader); every iteration's
    training loss is recorded (``losses``), and with ``stop_on_nonfinite`` a non-finite one stops the run
    naming the iteration; a progress bar over iterations shows the loss and the lr."""

    priority = "LOW"

    def __init__(
        self, what: str, progress: bool = True, desc: str | None = None, stop_on_nonfinite: bool = True
    ) -> None:
        self.what, self.progress, self.desc = what, progress, desc or what
        self.stop_on_nonfinite = stop_on_nonfinite
        self.losses: list[float] = []
        self._bar = None

    def checked_weights(self, runner) -> tuple[torch.nn.Module, str] | None:
        """(module, sha256 of its tensors as loaded) to check at the first step; None checks nothing."""
        return None

    def before_train(self, runner) -> None:
        from methods.encoder_file import tensors_sha256

        checked = self.checked_weights(runner)
        if checked is not None and tensors_sha256(checked[0].state_dict()) != checked[1]:
            raise RuntimeError(f"{self.what}: the weights changed between loading and the first step")
        self._bar = progress_bar(
            total=runner.max_iters, desc=self.desc, unit="it", enabled=self.progress and runner.rank == 0
        )

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        loss = float(torch.as_tensor(outputs["loss"]).detach()) if outputs and "loss" in outputs else math.nan
        if self.stop_on_nonfinite and not math.isfinite(loss):
            raise FloatingPointError(f"{self.what}: loss is {loss} at iteration {runner.iter + 1}")
        self.losses.append(loss)
        if self._bar is not None:
            lr = runner.optim_wrapper.optimizer.param_groups[-1]["lr"]
            self._bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}", refresh=False)
            self._bar.update(1)

    def after_train(self, runner) -> None:
        if self._bar is not None:
            self._bar.close()


class DenseRunHook(RunHook):
    """``RunHook`` for a dense protocol: the encoder checked at the first step is the backbone's ViT, against
    the sha256 of the strict loader's report."""

    def checked_weights(self, runner) -> tuple[torch.nn.Module, str] | None:
        from downstream.optim import find_vit

        backbone = unwrap(runner.model).backbone
        report = getattr(backbone, "load_report", None)
        return None if report is None else (find_vit(backbone)[1], report["sha256"])


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
