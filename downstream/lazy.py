"""Package exports that resolve on first use, so importing a protocol package does not import mmseg/mmdet
(and ``python -m package.module`` runs its module once: runpy warns when the package already imported it).

    __getattr__, __all__ = lazy_exports(__name__, {"run_ade20k": "downstream.ade20k.protocol"})
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], list[str]]:
    """The module ``__getattr__`` of ``package`` for ``exports`` (name -> module defining it), and its
    ``__all__``."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    return __getattr__, sorted(exports)
