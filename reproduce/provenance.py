"""Where a result came from: code commit, config hash, dataset manifest, package versions, device, seed.

Every record's ``provenance`` block is built here, so all runs describe themselves the same way.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]

PACKAGES = (
    "torch",
    "torchvision",
    "timm",
    "mmengine",
    "mmcv",
    "mmsegmentation",
    "mmdet",
    "open_clip_torch",
    "numpy",
    "pandas",
)


#: tracked files that runs write (a table run updates RESULTS.md): a change there says nothing of the code
OUTPUTS = ("RESULTS.md",)


def code_commit() -> str:
    """The git commit of the checkout, with '+dirty' when tracked files other than ``OUTPUTS`` differ from
    it (reproduce/all.py writes RESULTS.md after Table 1; the later tables' records still name the commit)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *(f":!{p}" for p in OUTPUTS)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def stable_hash(obj: Any) -> str:
    """sha256 (first 16 hex digits) of a JSON-able object with sorted keys: equal configs, equal hash."""
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def files_hash(paths: list[Path]) -> str:
    """sha256 over the contents of source files (in the given order), e.g. the code that trains a method."""
    digest = hashlib.sha256()
    for path in paths:
        # Paths inside the checkout hash by their relative name (the same on every clone); a method folder
        # from another root (a plug-in, a test's scratch folder) by its absolute path.
        name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        digest.update(str(name).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "absent"
    versions["python"] = platform.python_version()
    return versions


def device_description(device: torch.device | str | None = None) -> str:
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    return f"CPU {platform.machine()} x{torch.get_num_threads()} threads"


def provenance(
    *,
    config: Any,
    dataset_manifest_hash: str,
    world_size: int,
    batch_size: int,
    precision: str,
    seed: int,
    device: torch.device | str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "code_commit": code_commit(),
        "config_hash": stable_hash(config),
        "dataset_manifest_hash": dataset_manifest_hash,
        "packages": package_versions(),
        "device": device_description(device),
        "world_size": world_size,
        "batch_size": batch_size,
        "precision": precision,
        "seed": seed,
        **extra,
    }
