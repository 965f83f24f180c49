"""The manifest: sha256 of every file and of each split, and the hash that identifies the dataset.

Hashes over a set of files are the sha256 of its ``sha256sum``-style listing (``<sha256>  <path>\\n``,
sorted by path), so ``sha256sum -c`` can check a dataset by hand. The manifest is written last, after
every other file, so a dataset that has a manifest is complete; ``verify`` re-hashes the files on reuse.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from synthscenes.config import DatasetConfig, canonical_json
from synthscenes.files import FileRecord

MANIFEST_NAME = "manifest.json"
FORMAT = "synthscenes-manifest/1"


def listing_hash(files: dict[str, str]) -> str:
    listing = "".join(f"{sha}  {path}\n" for path, sha in sorted(files.items()))
    return hashlib.sha256(listing.encode()).hexdigest()


def build_manifest(cfg: DatasetConfig, records: Iterable[FileRecord]) -> dict[str, Any]:
    files: dict[str, str] = {}
    by_split: dict[str, dict[str, str]] = {}
    for record in records:
        if record.path in files:
            raise ValueError(f"two writers produced {record.path}")
        files[record.path] = record.sha256
        by_split.setdefault(record.split, {})[record.path] = record.sha256
    return {
        "format": FORMAT,
        "name": cfg.name,
        "sha256": listing_hash(files),
        "config": cfg.fingerprint(),
        "config_sha256": cfg.fingerprint_hash(),
        "splits": {
            key: {"files": len(split), "sha256": listing_hash(split)}
            for key, split in sorted(by_split.items())
        },
        "files": dict(sorted(files.items())),
    }


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    (root / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def read_manifest(root: Path) -> dict[str, Any] | None:
    """The manifest at ``root``, or None if there is none or it is not a complete SynthScenes manifest."""
    try:
        manifest = json.loads((Path(root) / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or "files" not in manifest:
        return None
    return manifest


def verify(root: Path, manifest: dict[str, Any]) -> list[str]:
    """Paths (relative to ``root``) that are missing or whose bytes differ from the manifest; [] if intact."""
    bad = []
    for relpath, sha in manifest["files"].items():
        try:
            digest = hashlib.sha256((Path(root) / relpath).read_bytes()).hexdigest()
        except OSError:
            digest = None
        if digest != sha:
            bad.append(relpath)
    if listing_hash(manifest["files"]) != manifest.get("sha256"):
        bad.append(MANIFEST_NAME)
    return bad


def same_config(manifest: dict[str, Any], cfg: DatasetConfig) -> bool:
    return canonical_json(manifest.get("config")) == canonical_json(cfg.fingerprint())
