"""Loading a budget and enforcing it: every method trains with the budget's data, model size, schedule and
optimizer; a method config may add its own keys only.

A budget file is an mmengine config. ``base.py`` holds the papers' setting with each value's source; the
other budgets inherit it (``_base_``) and state only the keys they change, each with its reason. Top-level
names starting with ``_`` are the files' own helper values (sizes that other keys are computed from) and are
dropped on loading.

    python reproduce/budget.py --show tiny     # the resolved budget, and every key that differs from base
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmengine.config import Config

from methods.registry import BUDGET_KEYS

BUDGET_DIR = Path(__file__).resolve().parent / "budgets"
BUDGET_SECTIONS = ("data", "model", "pretrain")


class BudgetError(ValueError):
    """A budget that cannot be found or a method config that overrides a budget key."""


def available_budgets() -> list[str]:
    return sorted(p.stem for p in BUDGET_DIR.glob("*.py") if not p.stem.startswith(("_", "synthscenes_")))


def load_budget(name_or_path: str) -> Config:
    """A budget by name (``micro``, ``tiny``, ``small``, ``base-800e`` ...) or by path to a config file."""
    path = Path(name_or_path)
    if not path.suffix:
        path = BUDGET_DIR / f"{name_or_path}.py"
    if not path.is_file():
        raise BudgetError(
            f"no budget '{name_or_path}' ({path} does not exist); available: {', '.join(available_budgets())}"
        )
    cfg = Config.fromfile(str(path))
    for helper in [k for k in cfg if k.startswith("_")]:
        cfg.pop(helper)  # a file's own helper values, not budget keys
    missing = [s for s in BUDGET_SECTIONS if s not in cfg]
    if missing:
        raise BudgetError(f"{path}: budget lacks section(s) {', '.join(missing)}")
    return cfg


def flat_keys(tree: Mapping[str, Any], prefix: str = "") -> set[str]:
    """Dotted paths of every leaf and every sub-dict (``pretrain``, ``pretrain.ema``,
    ``pretrain.ema.half_life_fraction``)."""
    keys = set()
    for k, v in tree.items():
        path = f"{prefix}{k}"
        keys.add(path)
        if isinstance(v, Mapping):
            keys |= flat_keys(v, path + ".")
    return keys


def check_method_config(method: str, method_cfg: Mapping[str, Any], budget: Config) -> None:
    """Refuse a method config that sets a key the budget fixes (the harness's equal-budget guard).

    A key is refused when its path lies in a budget section, or when its last component names a budget
    key or one of the shared MAE arguments (``methods.registry.BUDGET_KEYS``, which discovery already refuses
    at a method's top level) anywhere: ``mask_ratio`` or ``pretrain.epochs`` under any sub-dict of a method
    config would silently change the budget for one method.
    """
    fixed = {k for section in BUDGET_SECTIONS for k in flat_keys(budget[section], section + ".")}
    fixed_leaves = {k.split(".")[-1] for k in fixed} | set(BUDGET_KEYS) | set(BUDGET_SECTIONS)
    for key in sorted(flat_keys(method_cfg)):
        if key.split(".")[0] in BUDGET_SECTIONS or key.split(".")[-1] in fixed_leaves:
            raise BudgetError(
                f"method '{method}' sets '{key}', which the budget '{budget.budget}' fixes for "
                "every method; remove it from the method's config.py"
            )


def learning_rate(pretrain: Mapping[str, Any]) -> float:
    """Absolute lr from the base lr, scaled linearly with the global batch (lr = base_lr * batch / 256)."""
    return pretrain["base_lr"] * pretrain["batch_size"] / 256


def ema_momentum(ema: Mapping[str, Any], total_steps: int) -> float:
    """The budget's EMA rule: a teacher half-life of ``half_life_fraction`` of the run, but never slower than
    the paper's momentum. m weighs the old teacher: teacher = m * teacher + (1 - m) * student."""
    from methods.ema import small_budget_momentum

    return small_budget_momentum(float(ema["paper_momentum"]), total_steps, float(ema["half_life_fraction"]))


def steps_for(pretrain: Mapping[str, Any], num_train: int, cost_ratio: float = 1.0) -> tuple[int, int]:
    """(total steps, steps per epoch). With equalize='flops' a method whose step costs ``cost_ratio`` times
    the reference (MAE) step gets proportionally fewer steps, so every method spends the same FLOPs."""
    steps_per_epoch = num_train // pretrain["batch_size"]
    if steps_per_epoch == 0:
        raise BudgetError(f"{num_train} training images are fewer than one batch ({pretrain['batch_size']})")
    total = pretrain["epochs"] * steps_per_epoch
    if pretrain["equalize"] == "flops":
        total = max(1, round(total / cost_ratio))
    elif pretrain["equalize"] != "epochs":
        raise BudgetError(f"pretrain.equalize must be 'epochs' or 'flops', got {pretrain['equalize']!r}")
    return total, steps_per_epoch


def build_model(method: str, budget: Config, **overrides: Any):
    """The method's model on the budget's architecture (``model.arch``) with the budget's shared MAE keys."""
    import methods

    shared = {k: v for k, v in budget.model.items() if k != "arch"}
    return methods.build(method, arch=budget.model.arch, **shared, **overrides)


def flat_values(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Every leaf of a budget as ``{'pretrain.ema.half_life_fraction': 0.1, ...}``."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, Mapping):
            out |= flat_values(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out


def differences(cfg: Config, reference: Config) -> dict[str, tuple[Any, Any]]:
    """``{key: (reference value, budget value)}`` for every leaf that differs (absent: ``'-'``)."""
    a, b = flat_values(reference.to_dict()), flat_values(cfg.to_dict())
    return {
        k: (a.get(k, "-"), b.get(k, "-")) for k in sorted(set(a) | set(b)) if a.get(k, "-") != b.get(k, "-")
    }


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description="Show a resolved budget and what it changes from base.py.")
    p.add_argument(
        "--show", required=True, metavar="NAME", help=f"a budget: {', '.join(available_budgets())}"
    )
    p.add_argument("--against", default="base", help="the budget to compare with (default: base)")
    args = p.parse_args(argv)
    try:
        cfg, reference = load_budget(args.show), load_budget(args.against)
    except BudgetError as e:
        raise SystemExit(f"error: {e}") from None
    values = flat_values(cfg.to_dict())
    width = max(map(len, values))
    print(f"# budget {cfg.budget}: {len(values)} keys")
    for key, value in values.items():
        print(f"{key:<{width}}  {value!r}")
    diff = differences(cfg, reference)
    print(f"\n# {len(diff)} keys differ from {args.against}")
    for key, (was, now) in diff.items():
        print(f"{key:<{width}}  {was!r} -> {now!r}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
