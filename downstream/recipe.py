"""Checking a budget's protocol section (``ade20k``, ``coco``, ``davis``): every error is one line naming the
budget file and the key.

    r = checked_section(budget_cfg, "ade20k", RECIPE_KEYS, RecipeError, choices=CHOICES)
    check_ints(r, "ade20k", RecipeError, positive=("iters",), non_negative=("warmup_iters",))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def budget_file(budget_cfg: Mapping[str, Any]) -> str:
    """Where a budget's values come from, for error messages."""
    return f"reproduce/budgets/{budget_cfg.get('budget', '?')}.py"


def checked_section(
    budget_cfg: Mapping[str, Any],
    section: str,
    keys: Iterable[str],
    error: type[Exception],
    choices: Mapping[str, Iterable[Any]] | None = None,
) -> dict[str, Any]:
    """The budget's ``section`` as a plain dict: it must exist, hold exactly ``keys`` (plus an optional
    ``name``), and each key of ``choices`` must hold one of the values the code implements."""
    where = budget_file(budget_cfg)
    if section not in budget_cfg:
        raise error(f"budget {budget_cfg.get('budget', '?')!r} has no {section!r} section ({where})")
    raw = budget_cfg[section]
    r = raw.to_dict() if hasattr(raw, "to_dict") else dict(raw)
    keys = list(keys)
    missing = [k for k in keys if k not in r]
    unknown = sorted(set(r) - set(keys) - {"name"})
    if missing or unknown:
        what = [f"missing {missing}"] * bool(missing) + [f"unknown {unknown}"] * bool(unknown)
        raise error(f"{where}: {section} section: {'; '.join(what)}")
    for key, allowed in (choices or {}).items():
        if r[key] not in allowed:
            raise error(f"{where}: {section}.{key} = {r[key]!r}; implemented: {list(allowed)}")
    return r


def check_ints(
    r: Mapping[str, Any],
    section: str,
    error: type[Exception],
    *,
    where: str,
    positive: Iterable[str] = (),
    non_negative: Iterable[str] = (),
) -> None:
    """Each key of ``positive`` holds an integer >= 1 and each of ``non_negative`` one >= 0 (not a bool)."""
    for keys, low, kind in ((positive, 1, "a positive"), (non_negative, 0, "a non-negative")):
        for key in keys:
            if not isinstance(r[key], int) or isinstance(r[key], bool) or r[key] < low:
                raise error(f"{where}: {section}.{key} = {r[key]!r} must be {kind} integer")
