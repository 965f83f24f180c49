"""Regression against recorded numbers: records -> cells -> ``tables/recorded/<budget>.csv`` -> ``compare``.

A *cell* is one (table, row, column) of a table spec with a measured or cost value: its mean, the standard
deviation over pretraining seeds (of the per-seed means; pretraining is the largest source of variance), n,
and the provenance of the records behind it. ``reproduce/record.py`` writes the recorded cells of a
multi-seed run; the CI test re-runs the budget with one seed and ``compare``s every cell.

Tolerance rule, per cell (``tolerance``)::

    |current.mean - recorded.mean|
        <= max(K_SIGMA * recorded.std, ABS_FLOOR[kind], REL_FLOOR[kind] * |recorded.mean|)

* σ is the larger of the cell's own std and its column's pooled std (``pooled_spread``): a std from 3 seeds
  is too uncertain to trust alone (a micro cell recorded with std 0.41 failed a CI run by 1.24 points while
  its column's pooled std was about 1.3).
* ``K_SIGMA = 3``: the current run is one draw from the distribution the recorded pretraining seeds sampled.
  The recorded mean itself is uncertain by σ/√n, so a new draw deviates from it with std σ·√(1 + 1/n)
  ≈ 1.15σ for n = 3; 3σ is then ≈ 2.6 of those, a false alarm rate near 1% per cell under normality, while
  a real regression (a broken mask, target or loss) moves micro accuracies by many σ.
* ``accuracy`` cells (top-1, mIoU, AP, J&F, in percent) have an absolute floor of ``ACCURACY_FLOOR_PP = 1.0``
  point: a small sample of seeds can give a near-zero std by chance, micro validation splits are small (one
  image is a fraction of a point), and CPU kernels differ across machines and thread counts. A cell recorded
  from one pretraining seed (std unknown) uses the floor alone.
* ``flops`` cells are deterministic counts: any change beyond float formatting (relative 1e-6) means the model
  or the budget changed, and the numbers must be re-recorded deliberately.
* ``throughput`` cells (images/s) depend on the machine: they are recorded for information and never compared.

A cell present on one side only is a failure unless its key matches a pattern in ``allow_missing``.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from fnmatch import fnmatch
from pathlib import Path

from tables.aggregate import cell_stats, load_frame, table_rows
from tables.records import write_text_atomic
from tables.specs import ACCURACY, FLOPS, TABLES, THROUGHPUT, CostColumn, MeasuredColumn, TableSpec

RECORDED_DIR = Path(__file__).resolve().parent / "recorded"

K_SIGMA = 3.0
ACCURACY_FLOOR_PP = 1.0
ABS_FLOOR = {ACCURACY: ACCURACY_FLOOR_PP, FLOPS: 0.0}
REL_FLOOR = {ACCURACY: 0.0, FLOPS: 1e-6}
NOT_COMPARED = frozenset({THROUGHPUT})


@dataclass(frozen=True)
class Cell:
    table: str  # 'table1'
    row: str  # Row.key: the method, plus '@recipe' for a non-default recipe
    column: str  # the spec's column key
    kind: str  # accuracy | flops | throughput
    mean: float
    std: float  # over pretraining seeds; NaN with a single pretraining seed
    n: int  # records behind the cell
    n_pretrain_seeds: int
    n_eval_seeds: int
    code_commit: str  # distinct values joined with ';'
    config_hash: str
    dataset_manifest_hash: str

    @property
    def key(self) -> str:
        return f"{self.table}/{self.row}/{self.column}"


def cells_from_records(
    work_dir: str | os.PathLike, budget: str, specs: Iterable[TableSpec] = TABLES.values()
) -> list[Cell]:
    """Every measured and cost cell of ``specs`` that has records of ``budget`` under ``work_dir/records``."""
    frame = load_frame(work_dir, budget)
    cells = []
    for spec in specs:
        for row in table_rows(spec, frame):
            for column in spec.columns:
                if not isinstance(column, (MeasuredColumn, CostColumn)):
                    continue  # quoted paper numbers live in the yaml, not in regression cells
                s = cell_stats(frame, row, column)
                if s is None:
                    continue
                cells.append(
                    Cell(
                        table=spec.id,
                        row=row.key,
                        column=column.key,
                        kind=column.kind,
                        mean=s.mean,
                        std=s.std_pretrain,
                        n=s.n,
                        n_pretrain_seeds=s.n_pretrain_seeds,
                        n_eval_seeds=s.n_eval_seeds,
                        code_commit=";".join(s.code_commits),
                        config_hash=";".join(s.config_hashes),
                        dataset_manifest_hash=";".join(s.manifest_hashes),
                    )
                )
    return cells


def recorded_path(budget: str) -> Path:
    return RECORDED_DIR / f"{budget}.csv"


_FIELDS = [f.name for f in fields(Cell)]


def write_recorded(cells: Sequence[Cell], path: str | os.PathLike) -> Path:
    """Write cells as CSV (atomically), sorted by key so re-recording gives reviewable diffs."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_FIELDS, lineterminator="\n")
    writer.writeheader()
    for cell in sorted(cells, key=lambda c: c.key):
        row = asdict(cell)
        row["mean"] = repr(cell.mean)
        row["std"] = "" if math.isnan(cell.std) else repr(cell.std)
        writer.writerow(row)
    return write_text_atomic(out.getvalue(), path)


def read_recorded(path: str | os.PathLike) -> list[Cell]:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no recorded numbers (reproduce/record.py writes them)") from None
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames != _FIELDS:
        raise ValueError(f"{path}: columns {reader.fieldnames}, expected {_FIELDS}")
    cells = []
    for i, row in enumerate(reader, start=2):
        try:
            numbers = {"mean": float(row["mean"]), "std": float(row["std"]) if row["std"] else math.nan}
            counts = {k: int(row[k]) for k in ("n", "n_pretrain_seeds", "n_eval_seeds")}
            cells.append(Cell(**(row | numbers | counts)))
        except ValueError as e:
            raise ValueError(f"{path}:{i}: {e}") from None
    return cells


def pooled_spread(cells: Iterable[Cell]) -> dict[tuple[str, str], float]:
    """(table, column) -> the pooled std over pretraining seeds of that column's cells (root mean variance of
    the cells with a known std). One column's rows share a protocol and its seed noise, and a std from 3 seeds
    is itself uncertain (it is below half the true σ about one time in eight): a cell's own small std must not
    make its tolerance tighter than its column's noise."""
    variances: dict[tuple[str, str], list[float]] = {}
    for c in cells:
        if not math.isnan(c.std) and c.kind not in NOT_COMPARED:
            variances.setdefault((c.table, c.column), []).append(c.std**2)
    return {key: math.sqrt(sum(v) / len(v)) for key, v in variances.items()}


def tolerance(recorded: Cell, k: float = K_SIGMA, pooled: float = math.nan) -> float:
    """The allowed |current - recorded| of one cell (module docstring); inf for kinds never compared.
    ``pooled``: its column's pooled std (``pooled_spread``), used when larger than the cell's own."""
    if recorded.kind in NOT_COMPARED:
        return math.inf
    if recorded.kind == FLOPS:  # deterministic counts: no seed spread applies
        pooled = math.nan
    stds = [x for x in (recorded.std, pooled) if not math.isnan(x)]
    spread = k * max(stds) if stds else 0.0
    return max(spread, ABS_FLOOR[recorded.kind], REL_FLOOR[recorded.kind] * abs(recorded.mean))


def compare(
    recorded: Iterable[Cell],
    current: Iterable[Cell],
    *,
    allow_missing: Iterable[str] = (),
    k: float = K_SIGMA,
) -> list[str]:
    """One line per failing cell (empty: pass). ``allow_missing``: fnmatch patterns on cell keys
    (``table/row/column``) that may be absent on either side, e.g. a method that did not run in this job."""
    allowed = list(allow_missing)
    rec = {c.key: c for c in recorded}
    cur = {c.key: c for c in current}
    pooled = pooled_spread(rec.values())
    failures = []
    for key in sorted(rec.keys() | cur.keys()):
        if key not in cur or key not in rec:
            if not any(fnmatch(key, p) for p in allowed):
                side = "the current run" if key not in cur else "the recorded numbers"
                failures.append(f"{key}: missing in {side}")
            continue
        r, c = rec[key], cur[key]
        tol = tolerance(r, k, pooled.get((r.table, r.column), math.nan))
        gap = abs(c.mean - r.mean)
        if gap > tol:
            spread = (
                "std unknown" if math.isnan(r.std) else f"std {r.std:.4g} over {r.n_pretrain_seeds} seeds"
            )
            failures.append(
                f"{key}: current {c.mean:.6g} vs recorded {r.mean:.6g} ({spread}): "
                f"|diff| {gap:.4g} > tolerance {tol:.4g} ({r.kind}; recorded at {r.code_commit or 'unknown'})"
            )
    return failures
