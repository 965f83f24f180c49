"""Render a table spec from run records and ``paper_numbers.yaml``: markdown, CSV, LaTeX, RESULTS.md, a plot.

Reads only result records (``tables.records.iter_records``) and the yaml: it imports neither ``methods`` nor
``downstream``, so a table can be regenerated on a machine without torch.

Rules the output follows (tables/README.md):
* a measured cell is mean ± sample std over every record of the cell (a single run shows its value alone), and
  the notes say how many pretraining and evaluation seeds each cell spans;
* in each measured column the best mean is bold, and a cell whose gap to it is smaller than 2σ is marked ``≈``
  (not distinguishable), σ being the larger of the two cells' sample stds; cells with a single run on both
  sides cannot be assessed and are left unmarked (the notes say so);
* a cell without a record is an em dash, never 0;
* quoted numbers are labelled as such, with their protocol, paper and pretraining epochs.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from tables.aggregate import CellStats, Row, cell_stats, load_frame, table_rows
from tables.paper_numbers import DEFAULT_PATH, PROTOCOL_TITLES, PaperNumber, load_paper_numbers
from tables.records import DEFAULT_RECIPE, FLOPS_UNIT, iter_records, write_text_atomic
from tables.signal import Spread, gap
from tables.specs import (
    BASELINE,
    PAPER_MODEL,
    TABLES,
    Column,
    CostColumn,
    MeasuredColumn,
    PaperColumn,
    TableSpec,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS = ROOT / "RESULTS.md"
#: where ``render_table`` writes by default: ``<work_dir>/tables/<budget>/``, with the records it reads
OUT_SUBDIR = "tables"

DASH = "—"  # a missing cell
ND = "≈"  # not distinguishable from the best of its column
UNVERIFIED = "*"  # a quoted number not verified against the paper
SIGMAS = 2.0  # gaps below SIGMAS x std are not distinguishable (tables/README.md)

_FLOP_UNITS = ((1e18, "EFLOPs"), (1e15, "PFLOPs"), (1e12, "TFLOPs"), (1e9, "GFLOPs"), (1e6, "MFLOPs"))
_PROTOCOL_SHORT = {"coco_maskrcnn_vitdet": "ViTDet", "coco_maskrcnn_fpn_li2021": "Li2021"}


@dataclass
class RenderedTable:
    spec: TableSpec
    budget: str
    rows: list[Row]
    columns: list[Column]  # the columns shown (optional cost columns without values are dropped)
    stats: dict[tuple[str, str], CellStats | None]  # (row.key, column.key) -> measured/cost statistics
    quoted: dict[tuple[str, str], PaperNumber | None]  # (row.key, column.key) -> quoted number
    best: dict[str, str]  # measured column key -> row key of the best mean
    not_distinguishable: set[tuple[str, str]]
    display: pd.DataFrame  # display strings, one row per table row (index: row label)
    notes: list[str]
    markdown: str  # the section written to RESULTS.md and tableN.md
    paths: dict[str, Path] = field(default_factory=dict)
    # what a terminal shows: the title, the table and the gaps, without the provenance line and the notes
    # (a screenful each), which the markdown file keeps
    summary: str = ""


# ------------------------------------------------------------------------------------------- formatting
def _num(x: float) -> str:
    """Three significant figures without scientific notation for the magnitudes tables show."""
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    digits = max(0, 2 - math.floor(math.log10(abs(x))))
    return f"{x:.{digits}f}"


def flops_unit(values: list[float]) -> tuple[float, str]:
    """The largest FLOP unit in which the column's largest value is at least 1 (TFLOPs at micro, EFLOPs at
    paper scale), so one column shares one unit."""
    top = max((abs(v) for v in values), default=0.0)
    for scale, name in _FLOP_UNITS:
        if top >= scale:
            return scale, name
    return 1.0, "FLOPs"


def _measured_text(stats: CellStats, digits: int) -> str:
    if stats.n > 1:
        return f"{stats.mean:.{digits}f} ± {stats.std:.{digits}f}"
    return f"{stats.mean:.{digits}f}"


def _cost_text(stats: CellStats, column: CostColumn, scale: float) -> str:
    text = _num(stats.mean / scale)
    if column.show_std and stats.n > 1:
        text += f" ± {_num(stats.std / scale)}"
    return text


def _quoted_text(number: PaperNumber, column: PaperColumn) -> str:
    text = f"{number.value!r}{'' if number.verified else UNVERIFIED} ({number.epochs_label}"
    if len(column.protocols) > 1:
        text += f", {_PROTOCOL_SHORT.get(number.protocol, number.protocol)}"
    return text + ")"


# ------------------------------------------------------------------------------------------- statistics
def distinguishability(
    stats: dict[str, CellStats | None], higher_is_better: bool = True
) -> tuple[str | None, set[str], set[str]]:
    """For one column ({row key: stats}): the best row, the rows within SIGMAS·σ of it (not distinguishable),
    and the rows that could not be assessed (a single run on both sides). σ is the larger of the two cells'
    sample stds, so a noisy row cannot look distinguishable by being compared with a stable one. A tie (gap 0)
    is never distinguishable."""
    present = {k: s for k, s in stats.items() if s is not None}
    if not present:
        return None, set(), set()
    sign = 1.0 if higher_is_better else -1.0
    best = max(present, key=lambda k: sign * present[k].mean)  # first in row order on ties
    nd, unassessed = set(), set()
    for key, s in present.items():
        if key == best:
            continue
        gap = abs(present[best].mean - s.mean)
        stds = [x for x in (s.std, present[best].std) if not math.isnan(x)]
        if gap == 0:
            nd.add(key)
        elif not stds:
            unassessed.add(key)
        elif gap < SIGMAS * max(stds):
            nd.add(key)
    return best, nd, unassessed


def _seed_note(spec: TableSpec, rows: list[Row], stats: dict[tuple[str, str], CellStats | None]) -> str:
    parts = []
    for column in (*spec.measured, *(c for c in spec.costs if c.show_std)):
        groups: dict[str, list[str]] = {}
        for row in rows:
            s = stats.get((row.key, column.key))
            if s is None:
                continue
            if isinstance(column, CostColumn):
                desc = f"n={s.n} over {s.n_pretrain_seeds} pretraining seed(s)"
            else:
                pre = (
                    f"{s.n_pretrain_seeds} pretraining" if s.n_pretrain_seeds else "no pretraining (external)"
                )
                desc = f"n={s.n} over {pre} × {s.n_eval_seeds} evaluation seed(s)"
            groups.setdefault(desc, []).append(row.label)
        if groups:
            described = "; ".join(f"{d} ({', '.join(labels)})" for d, labels in groups.items())
            parts.append(f"{column.label}: {described}")
    return "Seeds (what varied in each cell): " + (". ".join(parts) if parts else "no measured cells") + "."


def _provenance_line(frame: pd.DataFrame, budget: str) -> str:
    def listed(name: str, values: list[str]) -> str:
        values = sorted({v for v in values if v})
        if not values:
            return f"{name}: not recorded"
        return f"{name}: " + ", ".join(f"`{v}`" for v in values)

    datasets = sorted({d for d in frame["dataset"] if d}) or ["the budget's default dataset"]
    return (
        f"**Measured here** (every number outside the *Paper* columns comes from a run record): "
        f"budget `{budget}`; dataset: {', '.join(datasets)}; "
        f"{listed('dataset manifest', list(frame['manifest_hash']))}; "
        f"{listed('device', list(frame['device']))}; {listed('code commit', list(frame['code_commit']))}; "
        f"{frame.groupby(['method', 'protocol', 'recipe', 'seed', 'pretrain_seed'], dropna=False).ngroups} "
        "records."
    )


# ------------------------------------------------------------------------------------------- writers
def _markdown_table(display: pd.DataFrame) -> str:
    header = ["Method", *display.columns]
    rule = "|" + "|".join(["---"] + ["---:"] * len(display.columns)) + "|"
    lines = ["| " + " | ".join(header) + " |", rule]
    for label, row in display.iterrows():
        lines.append("| " + " | ".join([str(label), *(str(v) for v in row)]) + " |")
    return "\n".join(lines)


_TEX_ESCAPES = {"&": r"\&", "%": r"\%", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}", "$": r"\$"}


def _tex(text: str) -> str:
    text = "".join(_TEX_ESCAPES.get(ch, ch) for ch in text)
    text = re.sub(r"\*\*(.+?)\*\*", r"\\textbf{\1}", text)  # bold best cells
    return (
        text.replace("±", r"$\pm$")
        .replace(ND, r"$\approx$")
        .replace(DASH, "---")
        .replace("×", r"$\times$")
        .replace(UNVERIFIED + " (", r"$^{*}$ (")
    )


def _latex_table(spec: TableSpec, display: pd.DataFrame, notes: list[str]) -> str:
    cols = "l" + "r" * len(display.columns)
    lines = [
        "% Generated by tables/render.py from run records and tables/paper_numbers.yaml; do not edit.",
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        rf"\begin{{tabular}}{{{cols}}}",
        r"\toprule",
        " & ".join(_tex(h) for h in ["Method", *display.columns]) + r" \\",
        r"\midrule",
    ]
    for label, row in display.iterrows():
        lines.append(" & ".join(_tex(str(v)) for v in [label, *row]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{_tex(spec.title)}.}}"]
    lines += [rf"\label{{tab:{spec.id}}}"]
    lines += [r"\end{table}", "% Notes:"] + [f"% - {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _csv_table(rt: RenderedTable) -> str:
    """Numbers, not display strings: mean, std, n per measured/cost column, and the quoted value."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["method", "recipe"]
    for c in rt.columns:
        header += [c.key, f"{c.key}_std", f"{c.key}_n"] if not isinstance(c, PaperColumn) else [c.key]
        if isinstance(c, PaperColumn):
            header += [f"{c.key}_epochs", f"{c.key}_protocol", f"{c.key}_source_id"]
    writer.writerow(header)
    for row in rt.rows:
        line: list[object] = [row.method, row.recipe]
        for c in rt.columns:
            if isinstance(c, PaperColumn):
                q = rt.quoted.get((row.key, c.key))
                line += [q.value, q.epochs, q.protocol, q.id] if q else ["", "", "", ""]
            else:
                s = rt.stats.get((row.key, c.key))
                line += [repr(s.mean), "" if math.isnan(s.std) else repr(s.std), s.n] if s else ["", "", ""]
        writer.writerow(line)
    return out.getvalue()


def update_results_section(results_md: str | os.PathLike, table_id: str, body: str) -> Path:
    """Replace the text between ``<!-- {table_id}:begin -->`` and ``<!-- {table_id}:end -->`` with ``body``,
    leaving the rest of the file byte for byte; a missing section is inserted before the first section of a
    higher-numbered table (or appended), and a missing file is created."""
    path = Path(results_md)
    begin, end = f"<!-- {table_id}:begin -->", f"<!-- {table_id}:end -->"
    text = path.read_text() if path.exists() else "# Results\n"
    section = f"{begin}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text, count=1)
    else:
        number = int(table_id.removeprefix("table")) if table_id.removeprefix("table").isdigit() else 10**9
        later = [
            m.start()
            for m in re.finditer(r"<!-- table(\d+):begin -->", text)
            if int(re.search(r"\d+", m.group()).group()) > number
        ]
        if later:
            text = text[: later[0]] + section + "\n\n" + text[later[0] :]
        else:
            text = text.rstrip("\n") + "\n\n" + section + "\n"
    return write_text_atomic(text, path)


def num_classes(work_dir: str | os.PathLike, budget: str, protocol: str) -> int | None:
    """The number of classes the records of ``protocol`` were scored on (their ``data.num_classes``); None
    when none carries it or they disagree."""
    found = {
        (record.extra.get("data") or {}).get("num_classes")
        for record in iter_records(work_dir, budget=budget, protocol=protocol)
    } - {None}
    return int(found.pop()) if len(found) == 1 else None


@dataclass(frozen=True)
class ReferenceLine:
    """A horizontal line of an accuracy-against-cost panel: a reference row's mean (its std as a band) or
    chance."""

    label: str
    value: float
    std: float = math.nan
    kind: str = "row"  # 'row' or 'chance'


def reference_lines(rt: RenderedTable, y_key: str, classes: int | None = None) -> list[ReferenceLine]:
    """The reference lines of the panel of column ``y_key``: each of the plot's ``reference_rows`` with a
    value in that column (random-init: what pretraining has to beat), then chance (100 / ``classes``) when
    the plot asks for it and ``classes`` is known."""
    plot = rt.spec.plot
    assert plot is not None
    lines = []
    for row in rt.rows:
        if row.method in plot.reference_rows and (s := rt.stats.get((row.key, y_key))):
            lines.append(ReferenceLine(f"{row.label}: {s.mean:.1f}", s.mean, s.std))
    if plot.chance and classes:
        lines.append(
            ReferenceLine(
                f"chance: 100/{classes} classes = {100 / classes:.1f}", 100 / classes, kind="chance"
            )
        )
    return lines


def plot_against_cost(rt: RenderedTable, path: Path, classes: dict[str, int | None] | None = None) -> Path:
    """Each row's measured accuracy (mean ± std) against its cost column (mean), one panel per measured
    column, with the plot's reference lines (``reference_lines``; ``classes``: each panel's number of
    classes, for chance) labelled in the legend; a PNG is written even without data (saying so), so the path
    the notes give always exists."""
    import matplotlib

    matplotlib.use("Agg")  # no display on CI machines
    import matplotlib.pyplot as plt

    plot = rt.spec.plot
    assert plot is not None
    xs_all = [s.mean for r in rt.rows if (s := rt.stats.get((r.key, plot.x)))]
    scale, unit = flops_unit(xs_all)
    fig, axes = plt.subplots(1, len(plot.ys), figsize=(5 * len(plot.ys), 4), squeeze=False)
    for ax, y_key in zip(axes[0], plot.ys):
        column = rt.spec.column(y_key)
        points = 0
        for i, row in enumerate(rt.rows):
            sx, sy = rt.stats.get((row.key, plot.x)), rt.stats.get((row.key, y_key))
            if sx is None or sy is None or row.method in plot.reference_rows:
                continue
            yerr = 0.0 if math.isnan(sy.std) else sy.std
            ax.errorbar(sx.mean / scale, sy.mean, yerr=yerr, fmt="o", capsize=3, color=f"C{i % 10}")
            ax.annotate(row.label, (sx.mean / scale, sy.mean), textcoords="offset points", xytext=(4, 4))
            points += 1
        lines = reference_lines(rt, y_key, (classes or {}).get(y_key))
        for line in lines:
            style = {"row": ("--", "0.25"), "chance": (":", "0.5")}[line.kind]
            ax.axhline(line.value, linestyle=style[0], color=style[1], linewidth=1.2, label=line.label)
            if not math.isnan(line.std):
                ax.axhspan(line.value - line.std, line.value + line.std, color=style[1], alpha=0.12, lw=0)
        if lines:
            ax.legend(loc="best", fontsize="small")
        if not points:
            ax.text(0.5, 0.5, "no records yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel(f"{rt.spec.column(plot.x).label} ({unit})")
        ax.set_ylabel(f"{column.label} (%)")
        ax.grid(alpha=0.3)
    fig.suptitle(f"{plot.title} (budget {rt.budget}; error bars and bands: sample std)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------------- the table
def _quoted_note(rt: RenderedTable) -> str | None:
    if not rt.spec.papers:
        return None
    used = [q for q in rt.quoted.values() if q is not None]
    protocols = sorted({p for c in rt.spec.papers for p in c.protocols})
    text = (
        "**Quoted from papers, not measured here**: the *Paper* columns give the number each method's own "
        f"paper reports for {PAPER_MODEL} at 224 px, with the pretraining epochs in brackets (ep n/s = not "
        "stated by the source), under the protocol(s) "
        + "; ".join(f"`{p}` ({PROTOCOL_TITLES[p]})" for p in protocols)
        + ". They come from `tables/paper_numbers.yaml`, where each carries its source. They are full-scale "
        "ImageNet-1K/ADE20K/COCO/DAVIS numbers: compare rankings, not absolute values, with a small budget."
    )
    if used:
        cites = sorted({f"{q.paper.citation}: {q.source_where} ({q.source_url})" for q in used})
        text += " Sources: " + "; ".join(cites) + "."
    if any(not q.verified for q in used):
        text += f" `{UNVERIFIED}` = not verified against the paper (see the entry's note in the yaml)."
    return text


def _shown_path(path: Path) -> str:
    """Paths in notes are relative to the repository when they are inside it (RESULTS.md is committed)."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _notes(rt: RenderedTable, frame: pd.DataFrame, unassessed: bool, out: Path) -> list[str]:
    spec = rt.spec
    notes = [
        f"Measured cells: {spec.description}; mean ± sample standard deviation over every run of the cell "
        "(a single run shows its value alone). No selection on the evaluation split: final-epoch values.",
        _seed_note(spec, rt.rows, rt.stats),
    ]
    if spec.measured:
        text = (
            f"Bold: the best mean of its column. `{ND}`: the gap to that best is smaller than 2σ (σ = the "
            "larger of the two cells' sample standard deviations), so the two are not distinguishable."
        )
        if unassessed:
            text += " Cells with a single run on both sides carry no marker: their gap cannot be assessed."
        notes.append(text)
    notes.append(f"`{DASH}`: no record for this cell (not run yet), never a zero.")
    if any(r.method == BASELINE for r in rt.rows):
        notes.append(
            f"`{BASELINE}`: the budget's ViT at MAE's initialisation (one per pretraining seed), evaluated "
            "with the same protocols and never pretrained; it has no pretraining cost. A method that does "
            "not clear it has learnt nothing the protocol can use at this budget."
        )
    if any(r.recipe != DEFAULT_RECIPE for r in rt.rows):
        notes.append(
            "`[recipe: X]`: evaluated with method X's official downstream recipe instead of the shared "
            f"default (`{DEFAULT_RECIPE}`, MAE's official recipe scaled to the budget), so not comparable "
            "row for row."
        )
    details = sorted(
        {
            d
            for d in frame.loc[frame["protocol"].isin([c.protocol for c in spec.measured])]["protocol_detail"]
            if d
        }
    )
    if details:
        notes.append("Protocol details recorded by the runs: " + "; ".join(details) + ".")
    if spec.costs:
        notes.append(
            "Cost columns come from the pretraining records: FLOPs of one training step per image "
            "(forward, backward and every teacher/EMA forward) counted with torch.utils.flop_counter, in "
            f"{FLOPS_UNIT}; training images/s measured during the run (mean ± std over pretraining seeds; "
            "machine-dependent); pretraining compute = FLOPs per image × training images. *Teacher "
            "training* (shown when a method trains its own teacher, e.g. a tiny CLIP) is reported "
            "separately: the papers do not count it."
        )
    if quoted := _quoted_note(rt):
        notes.append(quoted)
    if spec.plot:
        notes.append(
            f"Plot: `{_shown_path(out / spec.plot.filename)}` ({spec.plot.title.lower()}), "
            "written next to the table."
        )
    notes.extend(spec.notes)
    return notes


#: fewer methods than this with both a measured and a quoted number: no rank correlation is reported
MIN_RANKED = 3


def rank_agreement(rt: RenderedTable) -> str:
    """One line: for each paper column that ``ranks`` a measured column, and each protocol its quoted numbers
    come from, Kendall's tau-b between the measured means and the papers' numbers over the rows that have
    both, with how many rows and which. Empty when the table quotes no paper."""
    from scipy.stats import kendalltau

    parts = []
    for c in rt.spec.columns:
        if not isinstance(c, PaperColumn) or c.ranks is None:
            continue
        measured = rt.spec.column(c.ranks)
        pairs: dict[str, list[tuple[str, float, float]]] = {}
        for r in rt.rows:
            s, q = rt.stats.get((r.key, c.ranks)), rt.quoted.get((r.key, c.key))
            if s is not None and q is not None:
                pairs.setdefault(q.protocol, []).append((r.label, s.mean, q.value))
        for protocol in c.protocols:
            found = pairs.get(protocol, [])
            name = f"{measured.label} vs {c.label}" + (f" [{protocol}]" if len(c.protocols) > 1 else "")
            if len(found) < MIN_RANKED:
                parts.append(f"{name}: n/a ({len(found)} method(s) with both, {MIN_RANKED} needed)")
                continue
            tau = kendalltau([m for _, m, _ in found], [q for _, _, q in found]).statistic
            value = "undefined (ties)" if math.isnan(tau) else f"{tau:+.2f}"
            parts.append(
                f"{name}: τ = {value} over {len(found)} methods ({', '.join(n for n, _, _ in found)})"
            )
    if not parts:
        return ""
    return (
        "Rank agreement with the papers (Kendall's τ-b between the measured means and the papers' numbers, "
        "over the methods that have both; +1: the same order, 0: unrelated, −1: reversed): "
        + "; ".join(parts)
        + "."
    )


def _gap_section(rt: RenderedTable) -> list[str]:
    """Each row's gap to the random-init row per compared column, in points and in σ over pretraining seeds
    (``tables.signal``): what pretraining adds, read against the untrained encoder. Empty without that row."""
    columns = [c for c in rt.spec.measured if c.compare]
    if not columns or not any(r.method == BASELINE for r in rt.rows):
        return []
    base = next(r for r in rt.rows if r.method == BASELINE)

    def spread(row: Row, c: MeasuredColumn) -> Spread | None:
        s = rt.stats[(row.key, c.key)]
        return Spread(s.mean, s.std_pretrain) if s else None

    display = pd.DataFrame(index=[r.label for r in rt.rows if r != base], dtype=object)
    for c in columns:
        cells = []
        for r in (r for r in rt.rows if r != base):
            row, rand = spread(r, c), spread(base, c)
            cells.append(gap(row, rand).text(c.digits) if row and rand else DASH)
        display[c.label] = cells
    return [
        f"Gap to `{BASELINE}` (mean difference; in σ, the larger of the two rows' standard deviations over "
        "pretraining seeds, a row with one pretraining seed read against the other's; `σ n/a`: neither has "
        "one):",
        "",
        _markdown_table(display),
        "",
    ]


def render_table(
    spec: TableSpec | int,
    work_dir: str | os.PathLike,
    budget: str,
    out_dir: str | os.PathLike | None = None,
    *,
    results_md: str | os.PathLike | None = DEFAULT_RESULTS,
    paper_numbers: str | os.PathLike = DEFAULT_PATH,
    plot: bool = True,
) -> RenderedTable:
    """Render ``spec`` (or a table number) from the records of ``budget`` under ``work_dir/records``.

    Writes ``out_dir/<budget>/tableN.{md,csv,tex}`` (default ``out_dir``: ``<work_dir>/tables``, next to the
    records) and the plot PNG where the spec has one, and replaces the table's section of ``results_md``
    (None: leave RESULTS.md alone, e.g. in CI). ``plot=False`` skips the PNG (matplotlib is the slow part of
    a render)."""
    spec = TABLES[spec] if isinstance(spec, int) else spec
    frame = load_frame(work_dir, budget)
    quoted_numbers = load_paper_numbers(paper_numbers)
    rows = table_rows(spec, frame)

    stats: dict[tuple[str, str], CellStats | None] = {}
    quoted: dict[tuple[str, str], PaperNumber | None] = {}
    for row in rows:
        for c in spec.columns:
            if isinstance(c, PaperColumn):
                found = [
                    quoted_numbers.headline(row.method, p, c.metric, c.model, c.img_size) for p in c.protocols
                ]
                quoted[(row.key, c.key)] = next((q for q in found if q is not None), None)
            else:
                stats[(row.key, c.key)] = cell_stats(frame, row, c)
    columns = [
        c
        for c in spec.columns
        if not (isinstance(c, CostColumn) and c.optional and not any(stats[(r.key, c.key)] for r in rows))
    ]

    best: dict[str, str] = {}
    nd: set[tuple[str, str]] = set()
    any_unassessed = False
    for c in spec.measured:
        if not c.compare:
            continue
        column_stats = {r.key: stats[(r.key, c.key)] for r in rows}
        top, close, unassessed = distinguishability(column_stats, c.higher_is_better)
        if top is not None:
            best[c.key] = top
        nd |= {(k, c.key) for k in close}
        any_unassessed |= bool(unassessed)

    display = pd.DataFrame(index=[r.label for r in rows], dtype=object)
    for c in columns:
        if isinstance(c, CostColumn):
            values = [s.mean for r in rows if (s := stats[(r.key, c.key)])]
            scale, unit = (1e9, "GFLOPs") if c.unit == "GFLOPs" else flops_unit(values)
            if c.unit == "plain":
                scale, unit = 1.0, ""
            header = f"{c.label} ({unit})" if unit and c.unit != "GFLOPs" else c.label
        else:
            header = c.label
            if isinstance(c, PaperColumn) and len(c.protocols) == 1:
                header = f"{c.label} [{c.protocols[0]}]"
        cells = []
        for r in rows:
            if isinstance(c, PaperColumn):
                q = quoted[(r.key, c.key)]
                cells.append(_quoted_text(q, c) if q else DASH)
                continue
            s = stats[(r.key, c.key)]
            if s is None:
                cells.append(DASH)
            elif isinstance(c, CostColumn):
                cells.append(_cost_text(s, c, scale))
            else:
                text = _measured_text(s, c.digits)
                text = f"**{text}**" if best.get(c.key) == r.key else text
                cells.append(f"{text} {ND}" if (r.key, c.key) in nd else text)
        display[header] = cells

    rt = RenderedTable(spec, budget, rows, columns, stats, quoted, best, nd, display, [], "")
    target = (Path(work_dir) / OUT_SUBDIR if out_dir is None else Path(out_dir)) / budget
    rt.notes = _notes(rt, frame, any_unassessed, target)
    title = f"## Table {spec.number}: {spec.title} (budget `{budget}`)"
    table = _markdown_table(display) if rows else "_No rows: no records of this table's protocols yet._"
    provenance = (
        _provenance_line(frame, budget) if not frame.empty else f"No records for budget `{budget}` yet."
    )
    gaps = _gap_section(rt)
    ranks = [line, ""] if (line := rank_agreement(rt)) else []
    notes = [f"- {n}" for n in rt.notes]
    rt.markdown = "\n".join([title, "", provenance, "", table, "", *ranks, *gaps, *notes]) + "\n"
    rt.summary = "\n".join([title, "", table, "", *ranks, *gaps]).rstrip() + "\n"

    rt.paths["md"] = write_text_atomic(rt.markdown, target / f"{spec.id}.md")
    rt.paths["csv"] = write_text_atomic(_csv_table(rt), target / f"{spec.id}.csv")
    rt.paths["tex"] = write_text_atomic(_latex_table(spec, display, rt.notes), target / f"{spec.id}.tex")
    if spec.plot and plot:
        classes = {y: num_classes(work_dir, budget, spec.column(y).protocol) for y in spec.plot.ys}
        rt.paths["plot"] = plot_against_cost(rt, target / spec.plot.filename, classes)
    if results_md is not None:
        rt.paths["results"] = update_results_section(results_md, spec.id, rt.markdown)
    return rt
