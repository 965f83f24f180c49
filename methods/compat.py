"""Compatibility fixes for the pinned stack, each registered once, here.

mmengine 0.10.7 loads its own checkpoints with a bare ``torch.load(filename, map_location)``. Since torch 2.6
``torch.load`` defaults to ``weights_only=True``, which refuses the pickled ``HistoryBuffer`` and NumPy
objects that mmengine's Runner stores in every checkpoint, so ``runner.resume()`` fails. We re-register
mmengine's loader for local paths with ``weights_only=False``. This is narrower than the global
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``: only files mmengine's ``CheckpointLoader`` opens (the project's own
run checkpoints, or a path the user gave) are unpickled in full. Released third-party weights are loaded
elsewhere with ``weights_only=True``.
"""

from __future__ import annotations

import os.path as osp

import torch

_installed = False


def _load_from_local(filename: str, map_location=None):
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f"{filename} can not be found.")
    return torch.load(filename, map_location=map_location, weights_only=False)


def install() -> None:
    """Register the fixes (idempotent). Importing ``methods`` calls this."""
    global _installed
    if _installed:
        return
    from mmengine.runner.checkpoint import CheckpointLoader

    CheckpointLoader.register_scheme(prefixes="", loader=_load_from_local, force=True)
    _installed = True


def installed_loader():
    """The loader mmengine uses for local paths now (for tests)."""
    from mmengine.runner.checkpoint import CheckpointLoader

    return CheckpointLoader._schemes[""]
