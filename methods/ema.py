"""EMA teachers and their momentum.

One convention: ``teacher = m * teacher + (1 - m) * student``, **m = weight on the old teacher**
(0.996-style). mmengine's ``ExponentialMovingAverage`` weights the new value by its ``momentum``; it is not
used here. A method with an EMA copy declares it with ``MIMModel.ema()`` and its m with ``momentum()``; the
base class updates it after every step.

Schedules are pure functions of the global step, so a resumed run needs no replay. At small budgets the
papers' momenta (0.996-0.9999) leave the teacher at its random init for the whole run; the harness picks a
faster m with ``small_budget_momentum`` (EMA half-life a fixed fraction of the run, never slower than the
paper's m) and sets it as the model's ``teacher_momentum``.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn


class EMATeacher(nn.Module):
    """A frozen copy of a module, updated only by ``update`` and always in eval mode. A method runs the copy's
    networks through ``module`` (under ``torch.no_grad``).

    ``train()`` on a parent cannot switch it to training mode (no dropout, drop-path or batch-norm updates
    in the teacher), and its parameters never require gradients.
    """

    def __init__(self, student: nn.Module) -> None:
        super().__init__()
        self.module = copy.deepcopy(student)
        self.module.requires_grad_(False)
        self.module.eval()

    def train(self, mode: bool = True) -> EMATeacher:
        return super().train(False)

    @torch.no_grad()
    def update(self, student: nn.Module, momentum: float) -> None:
        ema_update(self.module, student, momentum)

    def copy_of(self, module: nn.Module, within: nn.Module) -> nn.Module:
        """The copy of ``module``, a submodule of (or equal to) ``within``, the networks this copy follows."""
        name = next(n for n, m in within.named_modules() if m is module)
        return self.module.get_submodule(name)


class Networks(nn.Module):
    """Existing modules under the given names and nothing else: the trained networks an EMA copy is made
    from and follows, under the copy's module names (a view: nothing is copied)."""

    def __init__(self, **modules: nn.Module) -> None:
        super().__init__()
        for name, module in modules.items():
            self.add_module(name, module)


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, m: float) -> None:
    """``teacher = m * teacher + (1 - m) * student`` for every parameter; buffers are copied.

    m is the weight on the OLD teacher. Parameters are matched by name, so a mismatch fails loudly.
    """
    if not 0.0 <= m <= 1.0:
        raise ValueError(f"teacher momentum must be in [0, 1], got {m}")
    t_params, s_params = _matched(dict(teacher.named_parameters()), dict(student.named_parameters()))
    if t_params:
        torch._foreach_mul_(t_params, m)
        torch._foreach_add_(t_params, s_params, alpha=1.0 - m)
    t_bufs, s_bufs = _matched(dict(teacher.named_buffers()), dict(student.named_buffers()))
    for t, s in zip(t_bufs, s_bufs):
        t.copy_(s)


def _matched(teacher: dict, student: dict) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    if teacher.keys() != student.keys():
        diff = sorted(set(teacher) ^ set(student))
        raise ValueError(f"teacher and student differ in these tensors: {diff}")
    names = list(teacher)
    return [teacher[n].data for n in names], [student[n].detach() for n in names]


# ----------------------------------------------------------------------------------------------------------
# Momentum schedules: pure functions of the global step
# ----------------------------------------------------------------------------------------------------------
def cosine_momentum(step: int, max_steps: int, base: float, final: float = 1.0) -> float:
    """Cosine from ``base`` at step 0 to ``final`` at ``max_steps`` (DINO's schedule: RC-MAE's, and
    CMT-MAE's ``momentum_schedule='cosine'``)."""
    progress = min(max(step / max(max_steps, 1), 0.0), 1.0)
    return final - (final - base) * (1.0 + math.cos(math.pi * progress)) / 2.0


def momentum_from_half_life(half_life_steps: float) -> float:
    """The m whose EMA halves an old contribution every ``half_life_steps`` updates: ``0.5 ** (1 / h)``."""
    if half_life_steps <= 0:
        raise ValueError(f"half-life must be positive, got {half_life_steps}")
    return 0.5 ** (1.0 / half_life_steps)


def small_budget_momentum(paper_momentum: float, total_steps: int, half_life_fraction: float) -> float:
    """The budget's rule: m with an EMA half-life of ``half_life_fraction * total_steps``, never slower
    (closer to 1) than the paper's m. Long runs therefore keep the paper's value."""
    return min(paper_momentum, momentum_from_half_life(half_life_fraction * total_steps))
