"""Comparing a run with its committed trace, and saying where it first diverged.

Tolerances: every step value and end-of-run value within a relative ``RTOL`` (1e-5); every float
fingerprint of weights (sum, sum of squares, sum of absolute values) within a relative ``RTOL_FINGERPRINT``
(1e-6), the sum measured against the sum of absolute values (a sum near zero has no useful relative error of
its own); buffer fingerprints (BatchNorm running statistics: averages of batch moments, as sensitive to
summation order as a logged value) within ``RTOL``; tensor counts, exact values and rendered text exactly.
The sha256 is reported when it differs but does not fail a comparison: another CPU may add in another order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.golden.traces import Trace

RTOL = 1e-5
RTOL_FINGERPRINT = 1e-6
#: the suffix of a buffer fingerprint (BatchNorm running statistics): derived from the batches like a logged
#: value, not trained, and held to ``RTOL``
BUFFERS = "#buffers"
#: below this, two values are equal whatever their ratio (a weight of 0 times a loss, an lr at warm-up start)
ATOL = 1e-12


@dataclass(frozen=True)
class Difference:
    where: str  # 'step 3', 'fingerprint model.decoder', 'value top1', 'exact predictions', 'steps', 'error'
    term: str
    recorded: Any
    current: Any
    relative: float | None = None

    def __str__(self) -> str:
        if self.current is None:  # an exact value: ``recorded`` says where it first differs
            return f"{self.where}: {self.recorded}"
        rel = f" (relative difference {self.relative:.2e})" if self.relative is not None else ""
        return f"{self.where}, {self.term}: recorded {_short(self.recorded)}, now {_short(self.current)}{rel}"


@dataclass(frozen=True)
class Comparison:
    name: str
    differences: list[Difference]
    notes: list[str]  # reported, not failing (sha256 on another machine)
    max_relative: float  # the largest relative difference of any compared float (0 when bitwise equal)

    @property
    def ok(self) -> bool:
        return not self.differences

    @property
    def first(self) -> Difference | None:
        return self.differences[0] if self.differences else None

    def message(self, limit: int = 5) -> str:
        if self.ok:
            return f"golden trace {self.name!r} matches (largest relative difference {self.max_relative:.1e})"
        first = self.first
        lines = [f"golden trace {self.name!r} diverged first at {first}"]
        lines += [f"  then at {d}" for d in self.differences[1:limit]]
        if len(self.differences) > limit:
            lines.append(f"  ... {len(self.differences) - limit} more differences")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.8g}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def relative(a: float, b: float, scale: float | None = None) -> float:
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.inf
    denom = max(abs(a), abs(b)) if scale is None else abs(scale)
    if abs(a - b) <= ATOL:
        return 0.0
    return abs(a - b) / denom if denom > 0 else math.inf


def compare(recorded: Trace, current: Trace) -> Comparison:
    """Every difference between ``current`` and ``recorded``, the steps first, in step order."""
    diffs: list[Difference] = []
    notes: list[str] = []
    worst = 0.0

    def check(where: str, term: str, a: Any, b: Any, rtol: float, scale: float | None = None) -> None:
        nonlocal worst
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
            rel = relative(float(a), float(b), scale)
            worst = max(worst, rel)
            if rel > rtol:
                diffs.append(Difference(where, term, a, b, rel))
        elif a != b:
            diffs.append(Difference(where, term, a, b))

    for i, (a, b) in enumerate(zip(recorded.steps, current.steps)):
        for term in sorted([*a, *(k for k in b if k not in a)], key=_term_order):
            if term not in a or term not in b:
                diffs.append(Difference(f"step {i}", term, a.get(term, "absent"), b.get(term, "absent")))
            else:
                check(f"step {i}", term, a[term], b[term], RTOL)
    if len(recorded.steps) != len(current.steps):
        diffs.append(Difference("steps", "count", len(recorded.steps), len(current.steps)))
    if recorded.error != current.error:
        diffs.append(Difference("end of run", "error", recorded.error, current.error))
    for name in [
        *recorded.fingerprints,
        *(k for k in current.fingerprints if k not in recorded.fingerprints),
    ]:
        a, b = recorded.fingerprints.get(name), current.fingerprints.get(name)
        if a is None or b is None:
            diffs.append(Difference(f"fingerprint {name}", "presence", a is not None, b is not None))
            continue
        for key in ("tensors", "numel"):
            check(f"fingerprint {name}", key, a[key], b[key], 0.0)
        rtol = RTOL if name.endswith(BUFFERS) else RTOL_FINGERPRINT
        check(f"fingerprint {name}", "sum", a["sum"], b["sum"], rtol, scale=max(a["abssum"], 1e-30))
        for key in ("sumsq", "abssum"):
            check(f"fingerprint {name}", key, a[key], b[key], rtol)
        if a["sha256"] != b["sha256"]:
            notes.append(f"fingerprint {name}: sha256 differs (not required across machines)")
    _compare_maps("value", recorded.values, current.values, diffs, check)
    _compare_maps("exact", recorded.exact, current.exact, diffs, None)
    return Comparison(recorded.name, diffs, notes, worst)


def _term_order(term: str) -> int:
    """Within a step the named terms come first, so a message names the ``loss_*`` term that moved rather than
    the total it moved; then the other logged scalars, the lr, and the total last."""
    if term == "loss":
        return 3
    if term.startswith("lr"):
        return 2
    return 0 if "loss" in term else 1


def _compare_maps(
    where: str, a: Mapping[str, Any], b: Mapping[str, Any], diffs: list[Difference], check
) -> None:
    for key in [*a, *(k for k in b if k not in a)]:
        if key not in a or key not in b:
            diffs.append(Difference(f"{where} {key}", "presence", key in a, key in b))
        elif check is not None:
            check(f"{where} {key}", key, a[key], b[key], RTOL)
        elif a[key] != b[key]:
            diffs.append(Difference(f"{where} {key}", key, _first_difference(a[key], b[key]), None))


def _first_difference(a: Any, b: Any) -> str:
    """Where two exact values (lists, texts) first differ."""
    if isinstance(a, str) and isinstance(b, str):
        la, lb = a.splitlines(), b.splitlines()
        for i, (x, y) in enumerate(zip(la, lb)):
            if x != y:
                return f"line {i + 1} was {x!r}, now {y!r}"
        return f"{len(la)} lines, now {len(lb)}"
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return f"item {i} was {x!r}, now {y!r}"
        return f"{len(a)} items, now {len(b)}"
    return f"was {a!r}, now {b!r}"
