"""Atomic file writes, the one implementation every package uses (``methods`` is the bottom layer).

A file is written to a temporary file in its own folder, flushed to disk, then renamed over the target with
``os.replace``: a reader, another process writing the same file, or a crash sees either the old file or the
new one, never a truncated one. Standard library only (torch is imported by ``atomic_torch_save`` alone).

    from methods.atomic import atomic_write, atomic_write_bytes, atomic_write_text, atomic_torch_save

    atomic_write(path, lambda f: np.save(f, array))  # any writer of an open file
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def atomic_write(path: str | os.PathLike, write: Callable[[IO], Any], mode: str = "wb") -> Path:
    """Call ``write(f)`` on a temporary file beside ``path`` opened with ``mode`` (``'wb'`` or ``'w'``),
    then rename it to ``path`` (parent folders are created). The file reads like any other (0644)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, 0o644)  # mkstemp creates 0600
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """The temporary files an interrupted ``atomic_write`` left in ``folder`` (a kill between write and
    rename): never read by anything, safe to delete once no writer runs there."""
    folder = Path(folder)
    return sorted(folder.glob(".*.tmp")) if folder.is_dir() else []


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text), mode="w")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` written atomically."""
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))
