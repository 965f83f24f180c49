"""The METHODS registry and discovery of method folders.

Every folder under ``methods/`` holding a ``config.py`` is a method, named after the folder. Its
``config.py`` declares:

* ``model``: the name of the ``MIMModel`` subclass in the folder's ``model.py``;
* ``config``: the method's own keys (constructor arguments beyond the budget's arch keys);
* ``variants`` (optional): ``{name: overrides}``; each variant is the method with some of its own keys
  overridden, and is listed, built and tabled like a method.
* ``ablations`` (optional): ``{name: overrides}`` like variants, built and pretrained by name, but left out of
  ``list_methods()`` (the default method list of every table): only an ablation table runs them.

Discovery runs on first use, so ``import methods`` stays cheap. Nothing else needs editing to add a method.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmengine.registry import Registry

from methods.backbone import ARCH_KEYS, resolve_arch
from methods.base import MIMModel
from methods.cli import UserInputError

METHODS = Registry("mim method")

#: (folder, importable package) pairs searched for method folders; tests may add a temporary one.
METHOD_ROOTS: list[tuple[Path, str]] = [(Path(__file__).resolve().parent, "methods")]
#: Keys that belong to the budget: a method config or variant may not set them.
BUDGET_KEYS = frozenset((*ARCH_KEYS, "mask_ratio", "norm_pix_loss"))


class UnknownMethodError(UserInputError, KeyError):
    """A method or variant name no folder declares (a KeyError, as a lookup, and a user-input error)."""


@dataclass(frozen=True)
class MethodSpec:
    name: str  # the method (folder) or variant name
    cls: type[MIMModel]
    config: dict[str, Any] = field(default_factory=dict)  # the method's own keys, variant overrides applied
    base: str | None = None  # for a variant: the method it varies
    folder: Path | None = None
    ablation: bool = False  # declared in ``ablations``: not in list_methods() unless asked for


_SPECS: dict[str, MethodSpec] = {}
_discovered_roots: set[tuple[Path, str]] = set()


def discover() -> dict[str, MethodSpec]:
    """Import every method folder under ``METHOD_ROOTS`` not yet seen; returns all known specs."""
    for root, package in METHOD_ROOTS:
        if (root, package) in _discovered_roots:
            continue
        for folder in sorted(p.parent for p in root.glob("*/config.py")):
            _register_folder(folder, f"{package}.{folder.name}")
        _discovered_roots.add((root, package))
    return _SPECS


def _register_folder(folder: Path, module: str) -> None:
    name = folder.name
    cfg = importlib.import_module(f"{module}.config")
    cls = getattr(importlib.import_module(f"{module}.model"), cfg.model)
    if not (isinstance(cls, type) and issubclass(cls, MIMModel)):
        raise TypeError(f"{module}.model.{cfg.model} is not a MIMModel subclass")
    own = dict(getattr(cfg, "config", {}))
    _check_keys(f"{module}.config.config", own, allowed=None)
    _add(MethodSpec(name, cls, own, None, folder))
    METHODS.register_module(name=name, module=cls, force=True)
    for variant, overrides in getattr(cfg, "variants", {}).items():
        _check_keys(f"{module}.config.variants[{variant!r}]", overrides, allowed=set(own))
        _add(MethodSpec(variant, cls, {**own, **overrides}, name, folder))
    for ablation, overrides in getattr(cfg, "ablations", {}).items():
        _check_keys(f"{module}.config.ablations[{ablation!r}]", overrides, allowed=set(own))
        _add(MethodSpec(ablation, cls, {**own, **overrides}, name, folder, ablation=True))


def _check_keys(where: str, keys: dict[str, Any], allowed: set[str] | None) -> None:
    budget = sorted(set(keys) & BUDGET_KEYS)
    if budget:
        raise ValueError(f"{where} sets budget keys {budget}; only the budget may set them")
    if allowed is not None and set(keys) - allowed:
        unknown = sorted(set(keys) - allowed)
        raise ValueError(f"{where} overrides unknown keys {unknown} (known: {sorted(allowed)})")


def _add(spec: MethodSpec) -> None:
    known = _SPECS.get(spec.name)
    if known is not None and known.folder != spec.folder:
        raise ValueError(f"method name {spec.name!r} is declared by both {known.folder} and {spec.folder}")
    _SPECS[spec.name] = spec


def get_spec(name: str) -> MethodSpec:
    specs = discover()
    if name not in specs:
        raise UnknownMethodError(f"unknown method {name!r}; known: {', '.join(specs)}")
    return specs[name]


def list_methods(ablations: bool = False, variants: bool = True) -> list[str]:
    """Every method and variant name, each method followed by its variants (and, with ``ablations``, its
    ablations); ``variants=False``: the methods alone (one per folder, each with its default config)."""
    return [
        name
        for name, spec in discover().items()
        if (ablations or not spec.ablation) and (variants or spec.base is None)
    ]


def list_ablations(method: str) -> list[str]:
    """The ablations a method's ``config.py`` declares, in declaration order."""
    return [name for name, spec in discover().items() if spec.ablation and spec.base == method]


def method_config(name: str) -> dict[str, Any]:
    """The method's own keys (with a variant's overrides), for the harness's budget-key guard and records."""
    return dict(get_spec(name).config)


def build(name: str, arch: str | dict[str, Any] = "micro", **overrides: Any) -> MIMModel:
    """Build a method (or variant) for an architecture: an ARCHS name or a dict of arch keys (budget keys
    such as ``mask_ratio`` may ride along), then ``overrides`` (either kind of key) on top."""
    spec = get_spec(name)
    return spec.cls(**{**resolve_arch(arch), **spec.config, **overrides})
