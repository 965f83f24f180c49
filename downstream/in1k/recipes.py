"""Which recipe a protocol run uses: the budget's section (MAE's official recipe, scaled per budget), plus an
optional per-method official-recipe override.

Every method is evaluated with ``recipe='mae'`` by default, so the rows of a table are comparable. A method's
own recipe is opt-in; its name is returned with the results, and the table shows it.

Overrides are functions of the budget's section, so they follow the budget's scaling: a key the method's paper
sets absolutely (HPM's layer decay 0.8) is set, and a learning rate is moved by the paper's ratio to MAE's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

PROTOCOLS = ("linear_probe", "finetune", "knn")

Override = Callable[[Mapping[str, Any]], dict[str, Any]]

# HPM (Haochen-Wang409/HPM, reference/methods.md §4.2): the linear probe uses SGD (momentum 0.9, wd 0) with
# blr 1e-3 where MAE uses LARS with blr 0.1 [CODE main_linprob.py]; fine-tuning uses layer decay 0.8 [README].
# On scaled budgets the probe's base lr keeps HPM's ratio to MAE's (1e-3 / 0.1) [INF: no source scales it].
_HPM: dict[str, Override] = {
    "linear_probe": lambda s: dict(optimizer="sgd", base_lr=s["base_lr"] * 1e-3 / 0.1),
    "finetune": lambda s: dict(layer_decay=0.8),
}

RECIPE_OVERRIDES: dict[str, dict[str, Override]] = {
    "mae": {},  # the budget's section as written
    "hpm": _HPM,
}


class RecipeError(ValueError):
    """An unknown recipe or protocol, or a budget without the protocol's section."""


def resolve_recipe(budget_cfg: Mapping[str, Any], protocol: str, recipe: str = "mae") -> dict[str, Any]:
    """The values a protocol run uses: ``budget_cfg[protocol]`` with the recipe's overrides, plus ``name``."""
    if protocol not in PROTOCOLS:
        raise RecipeError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    if recipe not in RECIPE_OVERRIDES:
        raise RecipeError(f"unknown recipe {recipe!r}; known: {', '.join(RECIPE_OVERRIDES)}")
    if protocol not in budget_cfg:
        name = budget_cfg.get("budget", "?")
        raise RecipeError(f"budget {name!r} has no '{protocol}' section (reproduce/budgets/{name}.py)")
    section = budget_cfg[protocol]
    section = section.to_dict() if hasattr(section, "to_dict") else dict(section)
    override = RECIPE_OVERRIDES[recipe].get(protocol)
    return {**section, **(override(section) if override else {}), "name": recipe}
