"""The result-record format: one JSON file per (budget, method, protocol, seed).

Every run (pretraining, each downstream protocol, the CLIP teacher) writes one record; ``tables/`` reads only
these records and ``paper_numbers.yaml``. A record holds what was measured (``metrics``), what it cost
(``cost``) and where it came from (``provenance``). Standard library only, so the renderer can read records
without importing torch.

Seeds: ``seed`` is the seed of the run the record describes. A downstream record also names the pretraining
seed of the encoder it evaluated (``pretrain_seed``), because pretraining is the largest source of variance
and a table must say which seeds varied. A pretraining record leaves ``pretrain_seed`` empty.

Layout on disk: ``<work_dir>/records/<budget>/<method>/<protocol>/seed<seed>.json`` for pretraining, and
``.../<protocol>/pretrain<P>-seed<S>.json`` for a protocol run on the encoder of pretraining seed P. A run
with a downstream recipe other than the shared default (``extra['recipe']``, e.g. a method's official one)
gets ``@<recipe>`` before ``.json``, so it never overwrites the default-recipe record.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

# FLOPs are counted as 2 x multiply-adds (torch.utils.flop_counter's unit). mmpretrain's tables quote
# multiply-adds ("GFLOPs" there = GMACs), i.e. half of these numbers.
FLOPS_UNIT = "FLOPs (2 x multiply-adds)"

REQUIRED_PROVENANCE = (
    "code_commit",
    "config_hash",
    "dataset_manifest_hash",
    "packages",
    "device",
    "world_size",
    "batch_size",
    "precision",
    "seed",
)


class RecordError(ValueError):
    """A record file that is missing, unreadable or not of this schema (the message names the file)."""


@dataclass
class Record:
    budget: str
    method: str
    protocol: str
    seed: int
    metrics: dict[str, float]
    provenance: dict[str, Any]
    cost: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    pretrain_seed: int | None = None
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    schema_version: int = SCHEMA_VERSION

    def validate(self, source: str = "record") -> Record:
        if self.schema_version != SCHEMA_VERSION:
            raise RecordError(f"{source}: schema_version {self.schema_version}, expected {SCHEMA_VERSION}")
        for name in ("budget", "method", "protocol"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value or "/" in value:
                raise RecordError(f"{source}: '{name}' must be a non-empty string without '/', got {value!r}")
        for name in ("seed", "pretrain_seed"):
            value = getattr(self, name)
            if (value is None and name == "pretrain_seed") or (
                isinstance(value, int) and not isinstance(value, bool)
            ):
                continue
            raise RecordError(f"{source}: '{name}' must be an integer, got {value!r}")
        for key, value in self.metrics.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise RecordError(f"{source}: metric '{key}' must be a finite number, got {value!r}")
        missing = [k for k in REQUIRED_PROVENANCE if k not in self.provenance]
        if missing:
            raise RecordError(f"{source}: provenance lacks {', '.join(missing)}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: The recipe every method is evaluated with unless a record says otherwise (MAE's official one, scaled to the
#: budget): its records carry no ``@recipe`` suffix. Its one home, for the tables and for ``downstream``.
DEFAULT_RECIPE = "mae"


def record_path(
    work_dir: str | os.PathLike,
    budget: str,
    method: str,
    protocol: str,
    seed: int,
    pretrain_seed: int | None = None,
    recipe: str | None = None,
) -> Path:
    name = f"seed{seed}" if pretrain_seed is None else f"pretrain{pretrain_seed}-seed{seed}"
    if recipe and recipe != DEFAULT_RECIPE:
        name += f"@{recipe}"
    return Path(work_dir) / "records" / budget / method / protocol / f"{name}.json"


def write_text_atomic(text: str, path: str | os.PathLike) -> Path:
    """Write ``text`` atomically (``methods.atomic``): readers and a crash see the old file or the new one."""
    return _atomic_write(path, lambda f: f.write(text))


def write_json_atomic(data: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write JSON atomically; a value JSON cannot hold fails before the old file is touched."""

    def write(f) -> None:
        json.dump(data, f, indent=2, sort_keys=True, allow_nan=False)
        f.write("\n")

    return _atomic_write(path, write)


def _atomic_write(path: str | os.PathLike, write) -> Path:
    # Imported on writing only: importing ``methods`` imports torch, and reading records must not need it.
    from methods.atomic import atomic_write

    return atomic_write(path, write, mode="w")


def write_record(record: Record, work_dir: str | os.PathLike) -> Path:
    record.validate()
    path = record_path(
        work_dir,
        record.budget,
        record.method,
        record.protocol,
        record.seed,
        record.pretrain_seed,
        record.extra.get("recipe"),
    )
    return write_json_atomic(record.to_dict(), path)


def read_record(path: str | os.PathLike) -> Record:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise RecordError(f"{path}: no such record") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RecordError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise RecordError(f"{path}: expected a JSON object")
    known = set(Record.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise RecordError(f"{path}: unknown keys {unknown}")
    try:
        record = Record(**data)
    except TypeError as e:
        raise RecordError(f"{path}: {e}") from None
    return record.validate(str(path))


def iter_records(work_dir: str | os.PathLike, **filters: Any) -> Iterator[Record]:
    """Every record under ``work_dir/records`` whose fields equal the given filters (e.g. budget='micro')."""
    for path in sorted((Path(work_dir) / "records").glob("*/*/*/*seed*.json")):
        record = read_record(path)
        if all(getattr(record, k) == v for k, v in filters.items()):
            yield record
