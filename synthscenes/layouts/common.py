"""What a layout writer returns for one item."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from synthscenes.files import FileRecord


@dataclass
class ItemResult:
    files: list[FileRecord]
    meta: dict[str, Any] = field(
        default_factory=dict
    )  # what the split's index files need (caption, boxes...)
