"""Which recipe a protocol run uses, for every protocol: the one home of ``resolve_recipe``, ``RecipeError``
and ``DEFAULT_RECIPE``.

A recipe is the budget's section of the protocol (``linear_probe``, ``finetune``, ``knn``, ``ade20k``,
``coco``, ``davis``): MAE's official protocol, scaled per budget. Every method is evaluated with
``DEFAULT_RECIPE`` by default, so the rows of a table are comparable. Other recipes are opt-in, and their
name is returned with the values (records and table rows keep them apart):

* a method's official recipe: a method folder may hold ``recipes.py`` with ``RECIPES = {name: {protocol:
  override}}``, found as the method itself is (``methods.registry``). An override is a function of the
  budget's section returning the keys it changes, so it follows the budget's scaling;
* a protocol's own variants (COCO's detector protocols, ``Section.recipes``).

A protocol module declares its section once (``SECTION``: the keys, the values the code implements, the
integer keys and a check of the rest); every error is one line naming the budget file and the key.

    r = resolve_recipe(budget_cfg, "ade20k")                # the budget's section, checked, plus 'name'
    r = resolve_recipe(budget_cfg, "linear_probe", "hpm")   # HPM's official probe (methods/hpm/recipes.py)
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tables.records import DEFAULT_RECIPE

__all__ = ["DEFAULT_RECIPE", "RecipeError", "Section", "method_recipes", "resolve_recipe"]

#: A method's override of one protocol: the budget's section -> the keys it sets.
Override = Callable[[Mapping[str, Any]], dict[str, Any]]


class RecipeError(ValueError):
    """An unknown protocol or recipe, or a budget section that is missing, incomplete or holds a value the
    code does not implement."""


@dataclass(frozen=True)
class Section:
    """What a budget's protocol section must hold. Each key is named once: in ``positive`` (an integer >=
    1), ``non_negative`` (an integer >= 0), ``choices`` (one of the values the code implements) or ``keys``
    (any other). ``check(r, recipe, where)`` checks the rest and normalises ``r`` in place; it returns the
    recipe name the run's records carry. A section with no keys at all is used as written."""

    keys: tuple[str, ...] = ()
    positive: tuple[str, ...] = ()
    non_negative: tuple[str, ...] = ()
    choices: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    check: Callable[[dict[str, Any], str, str], str] | None = None
    recipes: tuple[str, ...] = ()  # the protocol's own recipe names besides the default

    @property
    def all_keys(self) -> tuple[str, ...]:
        return (*self.keys, *self.positive, *self.non_negative, *self.choices)


#: protocol -> its ``Section``, or the module that declares it as ``SECTION`` (imported on first use, so
#: resolving a probe's recipe imports neither mmseg nor mmdet). The IN-1K sections are used as written.
SECTIONS: dict[str, Section | str] = {
    "linear_probe": Section(),
    "finetune": Section(),
    "knn": Section(),
    "ade20k": "downstream.ade20k.protocol",
    "coco": "downstream.coco.protocol",
    "davis": "downstream.davis.protocol",
}


def budget_file(budget_cfg: Mapping[str, Any]) -> str:
    """Where a budget's values come from, for error messages."""
    return f"reproduce/budgets/{budget_cfg.get('budget', '?')}.py"


def section_of(protocol: str) -> Section:
    if protocol not in SECTIONS:
        raise RecipeError(f"unknown protocol {protocol!r}; known: {', '.join(SECTIONS)}")
    section = SECTIONS[protocol]
    return importlib.import_module(section).SECTION if isinstance(section, str) else section


def method_recipes() -> dict[str, dict[str, Override]]:
    """Every recipe a method folder provides (its optional ``recipes.py``, ``RECIPES``), by name, for the
    method folders ``methods.registry`` discovers."""
    from methods.registry import METHOD_ROOTS, discover

    packages = {root: package for root, package in METHOD_ROOTS}
    found: dict[str, dict[str, Override]] = {}
    for spec in discover().values():
        if spec.base is not None or spec.folder is None:  # variants share their method's folder
            continue
        module = f"{packages[spec.folder.parent]}.{spec.folder.name}.recipes"
        if importlib.util.find_spec(module) is None:
            continue
        for name, overrides in importlib.import_module(module).RECIPES.items():
            if name in found or name == DEFAULT_RECIPE:
                raise ValueError(f"{module}: recipe {name!r} is already defined")
            found[name] = dict(overrides)
    return found


def resolve_recipe(
    budget_cfg: Mapping[str, Any], protocol: str, recipe: str = DEFAULT_RECIPE
) -> dict[str, Any]:
    """The values a ``protocol`` run uses: ``budget_cfg[protocol]`` with ``recipe``'s overrides, checked key
    by key, plus ``name`` (the recipe name its records carry)."""
    section = section_of(protocol)
    override = None
    if recipe != DEFAULT_RECIPE and recipe not in section.recipes:
        provided = method_recipes()
        if recipe not in provided:
            known = ", ".join([DEFAULT_RECIPE, *section.recipes, *provided])
            raise RecipeError(f"unknown recipe {recipe!r} for {protocol}; known: {known}")
        override = provided[recipe].get(protocol)
    where = budget_file(budget_cfg)
    if protocol not in budget_cfg:
        raise RecipeError(f"budget {budget_cfg.get('budget', '?')!r} has no {protocol!r} section ({where})")
    raw = budget_cfg[protocol]
    r = raw.to_dict() if hasattr(raw, "to_dict") else dict(raw)
    if override is not None:
        r = {**r, **override(r)}
    name = recipe
    if section.all_keys:
        check_keys(r, protocol, section.all_keys, where, section.choices)
        check_ints(r, protocol, where, positive=section.positive, non_negative=section.non_negative)
    if section.check is not None:
        name = section.check(r, recipe, where)
    return {**r, "name": name}


def check_keys(
    r: Mapping[str, Any],
    section: str,
    keys: Iterable[str],
    where: str,
    choices: Mapping[str, Iterable[Any]] | None = None,
) -> None:
    """``r`` holds exactly ``keys`` (plus an optional ``name``), and each key of ``choices`` one of the
    values the code implements."""
    keys = list(keys)
    missing = [k for k in keys if k not in r]
    unknown = sorted(set(r) - set(keys) - {"name"})
    if missing or unknown:
        what = [f"missing {missing}"] * bool(missing) + [f"unknown {unknown}"] * bool(unknown)
        raise RecipeError(f"{where}: {section} section: {'; '.join(what)}")
    for key, allowed in (choices or {}).items():
        if r[key] not in allowed:
            raise RecipeError(f"{where}: {section}.{key} = {r[key]!r}; implemented: {list(allowed)}")


def check_ints(
    r: Mapping[str, Any],
    section: str,
    where: str,
    *,
    positive: Iterable[str] = (),
    non_negative: Iterable[str] = (),
) -> None:
    """Each key of ``positive`` holds an integer >= 1 and each of ``non_negative`` one >= 0 (not a bool)."""
    for keys, low, kind in ((positive, 1, "a positive"), (non_negative, 0, "a non-negative")):
        for key in keys:
            if not isinstance(r[key], int) or isinstance(r[key], bool) or r[key] < low:
                raise RecipeError(f"{where}: {section}.{key} = {r[key]!r} must be {kind} integer")
