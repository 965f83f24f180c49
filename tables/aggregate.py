"""Records -> per-cell statistics, shared by the renderer and the regression cells.

One long frame holds every number of every record of a budget (one row per record and metric or cost field);
a cell is the subset of that frame selected by a table row (method, recipe) and a column (protocol, field).
Statistics: mean, sample standard deviation (ddof 1) over every record of the cell, n, the distinct
pretraining and evaluation seeds, and the standard deviation over pretraining seeds (of the per-seed means),
which is the spread the regression tolerance uses.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatch

import pandas as pd

from tables.records import DEFAULT_RECIPE, Record, iter_records
from tables.specs import ABLATED, CostColumn, MeasuredColumn, TableSpec, row_order_key

FRAME_COLUMNS = (
    "method",
    "recipe",
    "protocol",
    "source",
    "field",
    "value",
    "seed",
    "pretrain_seed",
    "code_commit",
    "config_hash",
    "manifest_hash",
    "device",
    "dataset",
    "protocol_detail",
    "ablation",
    "ablation_of",
)


@dataclass(frozen=True)
class Row:
    method: str
    recipe: str = DEFAULT_RECIPE

    @property
    def key(self) -> str:
        """Stable identifier in recorded CSVs: the method, plus '@recipe' when it is not the default."""
        return self.method if self.recipe == DEFAULT_RECIPE else f"{self.method}@{self.recipe}"

    @property
    def label(self) -> str:
        return self.method if self.recipe == DEFAULT_RECIPE else f"{self.method} [recipe: {self.recipe}]"


@dataclass(frozen=True)
class CellStats:
    mean: float
    std: float  # sample std over every record of the cell; NaN when n == 1
    n: int
    n_pretrain_seeds: int
    n_eval_seeds: int  # 0 for cost cells (pretraining records have no evaluation seed)
    std_pretrain: float  # std over pretraining seeds of the per-seed means; NaN with one pretraining seed
    code_commits: tuple[str, ...]
    config_hashes: tuple[str, ...]
    manifest_hashes: tuple[str, ...]


def _frame_rows(record: Record) -> Iterable[dict]:
    prov = record.provenance
    common = {
        "method": record.method,
        # Pretraining records have no downstream recipe; their costs are shared by every row of the method.
        "recipe": None if record.protocol == "pretrain" else record.extra.get("recipe", DEFAULT_RECIPE),
        "protocol": record.protocol,
        "seed": record.seed,
        # For a pretraining record its own seed *is* the pretraining seed.
        "pretrain_seed": record.seed if record.protocol == "pretrain" else record.pretrain_seed,
        "code_commit": str(prov.get("code_commit", "")),
        "config_hash": str(prov.get("config_hash", "")),
        "manifest_hash": str(prov.get("dataset_manifest_hash", "")),
        "device": str(prov.get("device", "")),
        "dataset": str(prov.get("dataset") or record.extra.get("dataset") or ""),
        "protocol_detail": str(record.extra.get("protocol_detail") or ""),
        "ablation": bool(record.extra.get("ablation", False)),  # set on pretraining records
        # the method an ablation varies (records before it was written: the name up to its first '-')
        "ablation_of": str(
            record.extra.get("ablation_of")
            or (record.method.split("-")[0] if record.extra.get("ablation") else "")
        ),
    }
    for source, values in (("metrics", record.metrics), ("cost", record.cost)):
        for name, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                yield common | {"source": source, "field": name, "value": float(value)}


def load_frame(work_dir: str | os.PathLike, budget: str) -> pd.DataFrame:
    """Every numeric metric and cost of every record of ``budget`` under ``work_dir/records``, long format."""
    rows = [row for record in iter_records(work_dir, budget=budget) for row in _frame_rows(record)]
    frame = pd.DataFrame(rows, columns=list(FRAME_COLUMNS))
    return frame.astype({"seed": "Int64", "pretrain_seed": "Int64", "value": "float64"})


def table_rows(spec: TableSpec, frame: pd.DataFrame) -> list[Row]:
    """The rows of ``spec``: every (method, recipe) with a record of one of its measured protocols, plus
    every pretrained method without one yet when the table shows costs; filtered by ``spec.rows`` (by default:
    every method whose pretraining record is not an ablation's), in stable order."""
    protocols = {c.protocol for c in spec.measured}
    measured = frame[frame["protocol"].isin(protocols)]
    rows = {Row(m, r) for m, r in measured[["method", "recipe"]].drop_duplicates().itertuples(index=False)}
    if spec.costs:
        evaluated = {row.method for row in rows}
        pretrained = set(frame.loc[frame["protocol"] == "pretrain", "method"])
        rows |= {Row(m) for m in pretrained - evaluated}
    if spec.rows is not None:
        patterns = set(spec.rows)
        if ABLATED in patterns:  # every method with an ablation record: its default, variants and ablations
            ablated = set(frame.loc[frame["ablation"].astype(bool), "ablation_of"])
            patterns |= {p for base in ablated for p in (base, f"{base}-*")}
        rows = {r for r in rows if any(fnmatch(r.method, pattern) for pattern in patterns)}
    else:  # ablations (a method config's 'ablations', Table 5) are rows only of the tables that name them
        ablations = set(frame.loc[frame["ablation"].astype(bool), "method"])
        rows = {r for r in rows if r.method not in ablations}
    return sorted(rows, key=lambda r: (row_order_key(r.method), r.recipe != DEFAULT_RECIPE, r.recipe))


def cell_frame(frame: pd.DataFrame, row: Row, column: MeasuredColumn | CostColumn) -> pd.DataFrame:
    selected = frame[(frame["method"] == row.method) & (frame["protocol"] == column.protocol)]
    if isinstance(column, MeasuredColumn):
        selected = selected[(selected["recipe"] == row.recipe) & (selected["source"] == "metrics")]
        return selected[selected["field"] == column.metric]
    return selected[(selected["source"] == "cost") & (selected["field"] == column.field)]


def _distinct(series: pd.Series) -> tuple[str, ...]:
    return tuple(sorted({v for v in series if v}))


def cell_stats(frame: pd.DataFrame, row: Row, column: MeasuredColumn | CostColumn) -> CellStats | None:
    """Statistics of one cell, or None when no record has it (rendered as an em dash, never as 0)."""
    cell = cell_frame(frame, row, column)
    if cell.empty:
        return None
    values = cell["value"]
    per_pretrain = cell.groupby("pretrain_seed", dropna=False)["value"].mean()
    is_cost = isinstance(column, CostColumn)
    return CellStats(
        mean=float(values.mean()),
        std=float(values.std(ddof=1)) if len(values) > 1 else math.nan,
        n=len(values),
        n_pretrain_seeds=int(cell["pretrain_seed"].nunique()),
        n_eval_seeds=0 if is_cost else int(cell["seed"].nunique()),
        std_pretrain=float(per_pretrain.std(ddof=1)) if len(per_pretrain) > 1 else math.nan,
        code_commits=_distinct(cell["code_commit"]),
        config_hashes=_distinct(cell["config_hash"]),
        manifest_hashes=_distinct(cell["manifest_hash"]),
    )
