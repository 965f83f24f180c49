"""Parity with an official implementation, shared by tests/test_rcmae.py and tests/test_hpm.py.

``tests/fixtures/<method>_parity`` holds an official run's ``checkpoint.pth`` (the official model, as its
training script saves it) and ``reference.pth`` (its ``config`` and the official outputs), written by
``tests/fixtures/generate_<method>_parity.py``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

FIXTURES = Path(__file__).parent / "fixtures"


def load_parity(method: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(checkpoint, reference)`` of ``tests/fixtures/<method>_parity``."""
    folder = FIXTURES / f"{method}_parity"
    checkpoint = torch.load(folder / "checkpoint.pth", weights_only=True)
    reference = torch.load(folder / "reference.pth", weights_only=True)
    return checkpoint, reference


def converted_model(
    model_cls: Callable[..., torch.nn.Module],
    convert: Callable[[dict[str, Any]], dict[str, Any]],
    official: tuple[dict[str, Any], dict[str, Any]],
    **keys: Any,
) -> torch.nn.Module:
    """``model_cls`` with the fixture's arch (``reference['config']`` less ``in_chans``) and ``keys``, holding
    the official checkpoint as ``convert`` maps it (a strict load)."""
    checkpoint, reference = official
    arch = {k: v for k, v in reference["config"].items() if k != "in_chans"}
    model = model_cls(**arch, **keys)
    model.load_state_dict(convert(checkpoint)["state_dict"], strict=True)
    return model


def max_state_error(model: torch.nn.Module, converted: dict[str, torch.Tensor], teacher: bool) -> float:
    """Largest |ours - converted| over one network of a model with an EMA teacher: the converted state dict's
    ``teacher.*`` keys, or (``teacher=False``) all the others."""
    ours = model.state_dict()
    keys = [k for k in converted if k.startswith("teacher.") == teacher]
    return max((ours[k] - converted[k]).abs().max().item() for k in keys)
