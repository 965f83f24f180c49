"""Loading a budget and enforcing it: every method trains with the budget's data, model size, schedule and
optimizer; a method config may add its own keys only."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmengine.config import Config

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


# Keys of the MAE argument set that every method shares through the budget's `model` section or the arch.
ARCH_KEYS = (
    "img_size",
    "patch_size",
    "embed_dim",
    "depth",
    "num_heads",
    "decoder_embed_dim",
    "decoder_depth",
    "decoder_num_heads",
    "mlp_ratio",
    "norm_pix_loss",
    "mask_ratio",
)


def check_method_config(method: str, method_cfg: Mapping[str, Any], budget: Config) -> None:
    """Refuse a method config that sets a key the budget fixes (the harness's equal-budget guard).

    A key is refused when its path lies in a budget section, or when its last component names a budget
    key or one of the shared MAE arguments anywhere: ``mask_ratio`` or ``pretrain.epochs`` under any
    sub-dict of a method config would silently change the budget for one method.
    """
    fixed = {k for section in BUDGET_SECTIONS for k in flat_keys(budget[section], section + ".")}
    fixed_leaves = {k.split(".")[-1] for k in fixed} | set(ARCH_KEYS) | set(BUDGET_SECTIONS)
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
    from methods.teachers import small_budget_momentum

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
    return methods.build(method, budget=budget.model.arch, **shared, **overrides)
