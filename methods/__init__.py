"""Masked-image-modeling methods on one shared ViT.

Every method is a folder under ``methods/`` (``mae/``, ``rcmae/``, ...) holding a ``MIMModel`` subclass, its
method-specific config keys and a README with a fidelity table. The shared pieces (the ViT, the MAE decoder,
mask helpers, EMA teachers, the model base class and the registry) live beside them.
See ``methods/README.md``.

Importing this package also registers the project's one compatibility fix for mmengine checkpoints under
torch >= 2.6 (``methods.compat``), so every entry point that loads a checkpoint gets it.
"""

from methods import compat as _compat

_compat.install()

from methods.registry import build, list_methods, method_config  # noqa: E402

__all__ = ["build", "list_methods", "method_config"]
