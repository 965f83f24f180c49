"""The progress bars of the downstream protocols, in one place: tqdm on stderr, gone when done.

for batch in progress_bar(loader, desc="features val", unit="batch", enabled=progress): ...
bar = progress_bar(total=steps, desc="fine-tune seed 0", unit="it")  # then bar.update(1), bar.close()
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any


def progress_bar(
    iterable: Iterable | None = None,
    *,
    desc: str | None,
    unit: str,
    total: int | None = None,
    enabled: bool = True,
) -> Any:
    """A tqdm bar over ``iterable`` (or one advanced by hand up to ``total``) that leaves no line behind;
    when not ``enabled``, ``iterable`` itself (``None`` without one)."""
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False, file=sys.stderr)
