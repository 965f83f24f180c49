"""Table definitions as data: which rows, which measured / cost / quoted columns, and the plot.

A spec names record protocols and metrics only; it never names a method, so a new method folder (or a
converted external checkpoint, ``ext:<name>``) appears as a row as soon as its records exist. The renderer
(``render.py``) and the regression cells (``regression.py``) read these specs, so Tables 2-5 need only a spec.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from tables.paper_numbers import load_paper_numbers

#: The reference row every table script adds: the budget's ViT at MAE's initialisation, evaluated with the
#: same protocols and never pretrained. A pretrained row that does not clear it has learnt nothing useful.
BASELINE = "random-init"
#: The paper setting quoted beside measured numbers: the papers' main comparison model.
PAPER_MODEL = "ViT-B/16"

# Metric kinds decide the regression tolerance (regression.py) and the number format.
ACCURACY = "accuracy"  # a percentage from an evaluation (top-1, mIoU, AP, J&F)
FLOPS = "flops"  # a deterministic count
THROUGHPUT = "throughput"  # machine-dependent


#: a ``TableSpec.rows`` entry: every method with an ablation record (a method config's ``ablations``), with
#: its default, its variants and its ablations
ABLATED = "<ablated methods>"


@dataclass(frozen=True)
class MeasuredColumn:
    """A metric from downstream records: mean ± sample std over every record of the cell."""

    key: str
    label: str
    protocol: str  # record protocol, e.g. 'linear_probe'
    metric: str  # key in record.metrics, e.g. 'top1'
    kind: str = ACCURACY
    agg: str = "mean_std"
    digits: int = 1
    higher_is_better: bool = True
    compare: bool = True  # bold the best and mark cells within 2 std of it


@dataclass(frozen=True)
class CostColumn:
    """A cost from the method's pretraining records (``protocol == 'pretrain'``), shared by all its rows."""

    key: str
    label: str
    field: str  # key in record.cost
    kind: str = FLOPS
    # 'plain', 'GFLOPs', or 'auto_flops' (G/T/P/E FLOPs, chosen by the column's largest value)
    unit: str = "plain"
    show_std: bool = False
    optional: bool = False  # shown only when some row has a value (e.g. a teacher's training cost)
    protocol: str = "pretrain"


@dataclass(frozen=True)
class PaperColumn:
    """A number quoted from the method's own paper (``paper_numbers.yaml`` headline) at the paper setting."""

    key: str
    label: str
    protocols: tuple[str, ...]  # yaml protocols accepted; with several, each cell names its protocol
    metric: str
    model: str = PAPER_MODEL
    img_size: int = 224
    # the measured column this one is ranked against (``render.rank_agreement``: Kendall's tau per protocol)
    ranks: str | None = None


Column = MeasuredColumn | CostColumn | PaperColumn


@dataclass(frozen=True)
class PlotSpec:
    """Accuracy (measured columns) against a cost column, one panel per measured column, with horizontal
    reference lines labelled in each panel's legend."""

    filename: str
    x: str  # a CostColumn key
    ys: tuple[str, ...]  # MeasuredColumn keys
    title: str
    # rows drawn as a horizontal line at their mean (± std band) instead of a point: rows without a cost
    reference_rows: tuple[str, ...] = ()
    # a line at chance (100 / classes) when the records of a panel's protocol carry ``data.num_classes``
    chance: bool = False


@dataclass(frozen=True)
class TableSpec:
    number: int
    title: str
    description: str  # one sentence: what the measured columns are
    columns: tuple[Column, ...]
    # fnmatch patterns on the method name, or ABLATED; None: every method that is not an ablation
    rows: tuple[str, ...] | None = None
    plot: PlotSpec | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def id(self) -> str:
        return f"table{self.number}"

    @property
    def measured(self) -> tuple[MeasuredColumn, ...]:
        return tuple(c for c in self.columns if isinstance(c, MeasuredColumn))

    @property
    def costs(self) -> tuple[CostColumn, ...]:
        return tuple(c for c in self.columns if isinstance(c, CostColumn))

    @property
    def papers(self) -> tuple[PaperColumn, ...]:
        return tuple(c for c in self.columns if isinstance(c, PaperColumn))

    def column(self, key: str) -> Column:
        for c in self.columns:
            if c.key == key:
                return c
        raise KeyError(f"{self.id} has no column '{key}'")


@functools.cache
def paper_methods() -> tuple[str, ...]:
    """The methods with a paper in ``paper_numbers.yaml`` (its ``papers``' ``method``), in the file's order:
    the order the papers appeared. A new method folder needs no edit here: its records make its rows."""
    return tuple(dict.fromkeys(p.method for p in load_paper_numbers().papers.values() if p.method))


def row_order_key(method: str) -> tuple[int, int, str]:
    """Stable row order: the methods with a paper, in the papers' order (``paper_methods``), then their
    variants (``<method>-<variant>``, grouped under their method), then any other method alphabetically,
    then the random-init baseline, then external checkpoints ``ext:*``."""
    ordered = paper_methods()
    if method in ordered:
        return (0, ordered.index(method), "")
    for i, base in enumerate(ordered):
        if method.startswith(base + "-"):
            return (1, i, method)
    if method == BASELINE:
        return (3, 0, method)
    if method.startswith("ext:"):
        return (4, 0, method)
    return (2, 0, method)


# Cost columns shared by the tables that report pretraining cost.
_COST = (
    CostColumn("gflops_img", "GFLOPs/img (train step)", "flops_per_image", FLOPS, unit="GFLOPs"),
    CostColumn("img_s", "img/s (train)", "images_per_s", THROUGHPUT, show_std=True),
    CostColumn("compute", "Pretrain compute", "total_flops", FLOPS, unit="auto_flops"),
    CostColumn(
        "teacher_compute", "Teacher training", "teacher_total_flops", FLOPS, unit="auto_flops", optional=True
    ),
)

# The ImageNet-1K protocols' columns (Table 1, and Table 5's ablations under the same protocols).
_IN1K = (
    MeasuredColumn("lin_top1", "LIN top-1", "linear_probe", "top1"),
    MeasuredColumn("ft_top1", "FT top-1", "finetune", "top1"),
    MeasuredColumn("knn_top1", "k-NN top-1", "knn", "top1"),
)

TABLE1 = TableSpec(
    number=1,
    title="ImageNet-1K protocols and pretraining cost",
    description="top-1 accuracy (%) of the linear probe, end-to-end fine-tuning and k-NN on the budget's "
    "ImageNet-style validation split, per pretrained encoder",
    columns=(
        *_IN1K,
        *_COST,
        PaperColumn("paper_lin", "Paper LIN", ("in1k_linear_probe",), "top1", ranks="lin_top1"),
        PaperColumn("paper_ft", "Paper FT", ("in1k_finetune",), "top1", ranks="ft_top1"),
    ),
    plot=PlotSpec(
        "table1_compute.png",
        x="compute",
        ys=("lin_top1", "ft_top1"),
        title="Top-1 against total pretraining compute",
        reference_rows=(BASELINE,),
        chance=True,
    ),
)

# Tables 2-4: one protocol each, on the same rows as Table 1.
TABLE2 = TableSpec(
    number=2,
    title="ADE20K semantic segmentation (UperNet)",
    description="mIoU and aAcc (%) on the budget's ADE20K-layout validation split",
    columns=(
        MeasuredColumn("miou", "mIoU", "ade20k", "mIoU"),
        MeasuredColumn("aacc", "aAcc", "ade20k", "aAcc"),
        PaperColumn("paper_miou", "Paper mIoU", ("ade20k_upernet",), "mIoU", ranks="miou"),
    ),
)

_COCO_PROTOCOLS = ("coco_maskrcnn_vitdet", "coco_maskrcnn_fpn_li2021")

TABLE3 = TableSpec(
    number=3,
    title="COCO detection and instance segmentation (Mask R-CNN)",
    description="box and mask AP (%) on the budget's COCO-format validation split",
    columns=(
        MeasuredColumn("ap_box", "AP box", "coco", "AP_box"),
        MeasuredColumn("ap_mask", "AP mask", "coco", "AP_mask"),
        # The papers use two protocols (ViTDet; Li et al. 2021 FPN): each quoted cell names its own.
        PaperColumn("paper_ap_box", "Paper AP box", _COCO_PROTOCOLS, "AP_box", ranks="ap_box"),
        PaperColumn("paper_ap_mask", "Paper AP mask", _COCO_PROTOCOLS, "AP_mask", ranks="ap_mask"),
    ),
)

TABLE4 = TableSpec(
    number=4,
    title="DAVIS-2017 video object segmentation (label propagation)",
    description="J&F-Mean, J-Mean and F-Mean (%) on the budget's DAVIS-2017-layout validation split",
    columns=(
        MeasuredColumn("jf_mean", "J&F-Mean", "davis", "JF_mean"),
        MeasuredColumn("j_mean", "J-Mean", "davis", "J_mean"),
        MeasuredColumn("f_mean", "F-Mean", "davis", "F_mean"),
        PaperColumn("paper_jf", "Paper J&F", ("davis2017_label_propagation",), "JF_mean", ranks="jf_mean"),
    ),
    notes=(
        "Visualisation: `table4_davis.png`, written next to the table by `reproduce/table4.py`: one "
        "validation sequence's frames, its ground truth and each row's propagated masks (first pretraining "
        "seed).",
    ),
)

TABLE5 = TableSpec(
    number=5,
    title="CMT-MAE ablations",
    description="top-1 accuracy (%) of CMT-MAE's ablation variants (masking source, target, alpha, stage-1 "
    "length) under the Table 1 protocols",
    columns=(*_IN1K, _COST[0], _COST[2], _COST[3]),
    # the random-masking baseline, CMT-MAE with its variants and ablations (also before any ablation ran),
    # every other method that has ablation records, with its own, and the CLIP teacher's own probe
    rows=("mae", "cmtmae", "cmtmae-*", ABLATED, "clip-teacher"),
)

TABLES: dict[int, TableSpec] = {t.number: t for t in (TABLE1, TABLE2, TABLE3, TABLE4, TABLE5)}
