"""tables/: paper numbers, aggregation, renderer outputs and markers, RESULTS.md sections, regression."""

from __future__ import annotations

import copy
import csv
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tables import paper_numbers as pn
from tables.records import REQUIRED_PROVENANCE, Record, write_record
from tables.regression import (
    ACCURACY_FLOOR_PP,
    K_SIGMA,
    cells_from_records,
    compare,
    pooled_spread,
    read_recorded,
    tolerance,
    write_recorded,
)
from tables.render import DASH, ND, distinguishability, render_table, update_results_section
from tables.specs import TABLE1, TABLES, row_order_key

ROOT = Path(__file__).resolve().parents[1]
PROV = {k: "x" for k in REQUIRED_PROVENANCE} | {
    "code_commit": "c0ffee",
    "config_hash": "cfg",
    "dataset_manifest_hash": "manifest42",
    "device": "CPU test",
    "world_size": 1,
    "batch_size": 8,
    "seed": 0,
}


def pretrain(wd, method, seed, flops=1e8, images_per_s=100.0, **cost):
    cost = {"flops_per_image": flops, "images_per_s": images_per_s, "total_flops": flops * 1000} | cost
    write_record(Record("micro", method, "pretrain", seed, {"final_loss": 0.1}, PROV, cost=cost), wd)


def evaluate(wd, method, protocol, values, pretrain_seeds=None, recipe=None):
    """One record per value; pretraining seeds cycle through ``pretrain_seeds`` (default: one per value)."""
    pretrain_seeds = pretrain_seeds or list(range(len(values)))
    for i, v in enumerate(values):
        extra = {"recipe": recipe} if recipe else {}
        p = pretrain_seeds[i % len(pretrain_seeds)]
        seed = i // len(pretrain_seeds)
        write_record(
            Record("micro", method, protocol, seed, {"top1": v}, PROV, extra=extra, pretrain_seed=p), wd
        )


def render(wd, tmp_path, **kw):
    kw = {"results_md": tmp_path / "RESULTS.md", "plot": False} | kw
    return render_table(TABLE1, wd, "micro", tmp_path / "out", **kw)


# ------------------------------------------------------------------------------------------- paper numbers
def test_paper_numbers_load_and_every_entry_has_a_source():
    numbers = pn.load_paper_numbers()
    assert {n.method for n in numbers.numbers} >= {"mae", "rcmae", "hpm", "colormae", "cmtmae"}
    for n in numbers.numbers:
        assert n.source_url.startswith("https://") and n.source_where, n.id
        assert n.metric in pn.PROTOCOLS[n.protocol], n.id
        assert n.verified or n.note, n.id
    # Spot checks against the papers: CMT-MAE's abstract (arXiv 2412.17566; its tables could not be read, so
    # no other CMT-MAE number is recorded) and MAE's README (facebookresearch/mae).
    assert numbers.headline("cmtmae", "in1k_finetune", "top1").value == 85.7
    assert numbers.headline("mae", "in1k_finetune", "top1").value == 83.6
    assert numbers.headline("cmtmae", "in1k_linear_probe", "top1") is None  # TODO(PDF), never invented
    assert all(not n.verified for n in numbers.numbers if n.tag in pn.UNVERIFIED_TAGS)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda e: e.pop("source"), "entry 'mae-b16-ft': lacks source"),
        (lambda e: e.update(protocol="in1k_whatever"), "entry 'mae-b16-ft': protocol 'in1k_whatever'"),
        (lambda e: e.update(metric="mIoU"), "entry 'mae-b16-ft': metric 'mIoU' is not one of"),
        (lambda e: e.update(tag="REC"), "entry 'mae-b16-ft': tag REC .* cannot be verified"),
        (
            lambda e: e.update(paper="hpm"),
            "entry 'mae-b16-ft': headline number must come from the method's own",
        ),
        (lambda e: e.update(value="83.6"), "entry 'mae-b16-ft': value must be a finite number"),
        (
            lambda e: e.update(verified=False, note=None),
            "entry 'mae-b16-ft': an unverified number needs a note",
        ),
    ],
)
def test_a_malformed_entry_is_one_line_naming_it(tmp_path, edit, message):
    raw = yaml.load(pn.DEFAULT_PATH.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    entry = next(e for e in raw["numbers"] if e["id"] == "mae-b16-ft")
    edit(entry)
    path = tmp_path / "paper_numbers.yaml"
    path.write_text(yaml.dump(raw, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper)))
    with pytest.raises(pn.PaperNumbersError, match=message) as info:
        pn.load_paper_numbers(path)
    assert "\n" not in str(info.value)


def test_a_second_headline_for_the_same_setting_is_refused(tmp_path):
    raw = yaml.load(pn.DEFAULT_PATH.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    twin = copy.deepcopy(next(e for e in raw["numbers"] if e["id"] == "mae-b16-ft")) | {"id": "mae-twin"}
    raw["numbers"].append(twin)
    path = tmp_path / "paper_numbers.yaml"
    path.write_text(yaml.dump(raw, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper)))
    with pytest.raises(pn.PaperNumbersError, match="entry 'mae-twin': second headline"):
        pn.load_paper_numbers(path)


# ------------------------------------------------------------------------------------------- aggregation
def test_mean_std_n_and_seed_counts(tmp_path):
    wd = tmp_path / "wd"
    # 2 pretraining seeds x 2 evaluation seeds: mean 42, sample std of (40, 42, 42, 44) = sqrt(8/3).
    evaluate(wd, "mae", "linear_probe", [40.0, 42.0, 42.0, 44.0], pretrain_seeds=[0, 1])
    rt = render(wd, tmp_path)
    s = rt.stats[("mae", "lin_top1")]
    assert (s.mean, s.n, s.n_pretrain_seeds, s.n_eval_seeds) == (42.0, 4, 2, 2)
    assert s.std == pytest.approx(math.sqrt(8 / 3))
    # Per-pretraining-seed means are 41 and 43: their std is the regression spread.
    assert s.std_pretrain == pytest.approx(math.sqrt(2))
    assert "42.0 ± 1.6" in rt.display.loc["mae", "LIN top-1"]
    assert "n=4 over 2 pretraining × 2 evaluation seed(s) (mae)" in rt.markdown


def test_rows_follow_the_canonical_order_then_variants_then_others_then_external():
    names = ["ext:mae-official", "zzz", "cmtmae-teacher-only", "cmtmae", "hpm", "mae", "rcmae", "colormae"]
    assert sorted(names, key=row_order_key) == [
        "mae",
        "rcmae",
        "hpm",
        "colormae",
        "cmtmae",
        "cmtmae-teacher-only",
        "zzz",
        "ext:mae-official",
    ]


def test_row_order_is_the_papers_order_in_paper_numbers_yaml(monkeypatch):
    """No method name is written in specs.py: the first rows are the methods with a paper in the yaml, in
    the file's order, so a new method's paper entry places its rows with no other edit."""
    from types import SimpleNamespace

    from tables import specs

    assert specs.paper_methods()[:5] == ("mae", "rcmae", "hpm", "colormae", "cmtmae")
    papers = {m: SimpleNamespace(method=m) for m in ("mae", "newmim", "rcmae")} | {
        "x": SimpleNamespace(method=None)
    }
    monkeypatch.setattr(specs, "load_paper_numbers", lambda: SimpleNamespace(papers=papers))
    specs.paper_methods.cache_clear()
    try:
        names = ["zzz", "rcmae", "newmim-large", "newmim", "hpm", "mae"]
        assert sorted(names, key=row_order_key) == ["mae", "newmim", "rcmae", "newmim-large", "hpm", "zzz"]
    finally:
        specs.paper_methods.cache_clear()


def test_ablations_are_rows_only_of_the_tables_that_name_them(tmp_path):
    wd = tmp_path / "wd"
    pretrain(wd, "cmtmae", 0)
    write_record(
        Record("micro", "cmtmae-mask-random", "pretrain", 0, {}, PROV, cost={"flops_per_image": 1e8},
               extra={"ablation": True}),
        wd,
    )  # fmt: skip
    for method in ("cmtmae", "cmtmae-mask-random"):
        evaluate(wd, method, "linear_probe", [30.0])
    assert list(render(wd, tmp_path).display.index) == ["cmtmae"]
    table5 = render_table(TABLES[5], wd, "micro", tmp_path / "out5", results_md=None, plot=False)
    assert list(table5.display.index) == ["cmtmae", "cmtmae-mask-random"]


# ------------------------------------------------------------------------------------------- markers
@pytest.mark.parametrize("gap, marked", [(1.9, True), (2.1, False), (0.0, True), (5.0, False)])
def test_not_distinguishable_exactly_below_two_std(tmp_path, gap, marked):
    wd = tmp_path / "wd"
    evaluate(wd, "mae", "linear_probe", [49.0, 50.0, 51.0])  # mean 50, std 1
    evaluate(wd, "hpm", "linear_probe", [49.0 - gap, 50.0 - gap, 51.0 - gap])  # std 1, gap below
    rt = render(wd, tmp_path)
    assert rt.best["lin_top1"] == "mae"
    assert rt.display.loc["mae", "LIN top-1"].startswith("**")
    assert rt.display.loc["hpm", "LIN top-1"].endswith(ND) == marked
    assert ND not in rt.display.loc["mae", "LIN top-1"]
    assert (f"`{ND}`: the gap to that best is smaller than 2σ" in rt.markdown) is True


def test_distinguishability_uses_the_larger_std_and_skips_single_runs(tmp_path):
    wd = tmp_path / "wd"
    evaluate(wd, "mae", "linear_probe", [50.0, 50.0, 50.0])  # std 0
    evaluate(wd, "hpm", "linear_probe", [45.0, 47.0, 49.0])  # mean 47, std 2 -> 2σ = 4 > gap 3
    evaluate(wd, "rcmae", "finetune", [30.0])
    evaluate(wd, "mae", "finetune", [31.0])
    rt = render(wd, tmp_path)
    assert ("hpm", "lin_top1") in rt.not_distinguishable
    _, nd, unassessed = distinguishability({k[0]: rt.stats[k] for k in rt.stats if k[1] == "ft_top1"})
    assert unassessed == {"rcmae"} and not nd
    assert "single run on both sides" in rt.markdown


def test_missing_cells_are_em_dashes_never_zero(tmp_path):
    wd = tmp_path / "wd"
    evaluate(wd, "mae", "linear_probe", [10.0, 11.0])
    pretrain(wd, "hpm", 0)  # pretrained, not yet evaluated: a row with costs and dashes
    rt = render(wd, tmp_path)
    assert list(rt.display.index) == ["mae", "hpm"]
    assert rt.display.loc["mae", "k-NN top-1"] == DASH
    assert rt.display.loc["mae", "FT top-1"] == DASH
    assert rt.display.loc["hpm", "LIN top-1"] == DASH
    assert rt.display.loc["mae", "GFLOPs/img (train step)"] == DASH
    assert rt.display.loc["hpm", "GFLOPs/img (train step)"] == "0.100"
    assert rt.display.loc["hpm", "Paper LIN [in1k_linear_probe]"] == DASH  # HPM's LIN was not retrieved
    assert rt.display.loc["hpm", "Paper FT [in1k_finetune]"] == "84.2 (800 ep)"
    assert not any(v in ("0", "0.0") for v in rt.display.to_numpy().ravel())


def test_recipe_and_teacher_compute_are_shown_only_when_present(tmp_path):
    wd = tmp_path / "wd"
    evaluate(wd, "rcmae", "finetune", [60.0], recipe="rcmae")
    evaluate(wd, "mae", "finetune", [59.0])
    rt = render(wd, tmp_path)
    assert list(rt.display.index) == ["mae", "rcmae [recipe: rcmae]"]
    assert "Teacher training" not in " ".join(rt.display.columns)
    pretrain(wd, "cmtmae", 0, teacher_total_flops=3e12)
    rt = render(wd, tmp_path)
    teacher = next(c for c in rt.display.columns if c.startswith("Teacher training"))
    assert teacher == "Teacher training (TFLOPs)" and rt.display.loc["cmtmae", teacher] == "3.00"


# ------------------------------------------------------------------------------------------- outputs
def test_csv_latex_markdown_are_written(tmp_path):
    wd = tmp_path / "wd"
    evaluate(wd, "mae", "linear_probe", [40.0, 44.0])
    pretrain(wd, "mae", 0)
    rt = render(wd, tmp_path)
    out = tmp_path / "out" / "micro"
    assert rt.paths["md"] == out / "table1.md" and rt.paths["md"].read_text() == rt.markdown
    rows = list(csv.DictReader(rt.paths["csv"].open()))
    assert rows[0]["method"] == "mae" and float(rows[0]["lin_top1"]) == 42.0 and rows[0]["lin_top1_n"] == "2"
    assert float(rows[0]["lin_top1_std"]) == pytest.approx(math.sqrt(8)) and rows[0]["knn_top1"] == ""
    assert rows[0]["paper_ft"] == "83.6" and rows[0]["paper_ft_source_id"] == "mae-b16-ft"
    tex = rt.paths["tex"].read_text()
    for token in (
        r"\toprule",
        r"\midrule",
        r"\bottomrule",
        r"$\pm$",
        "---",
        r"\textbf{42.0",
        r"in1k\_finetune",
    ):
        assert token in tex, token
    assert "manifest42" in rt.markdown and "c0ffee" in rt.markdown and "budget `micro`" in rt.markdown
    assert "Quoted from papers, not measured here" in rt.markdown and "arXiv 2111.06377" in rt.markdown


def test_plot_png_is_written(tmp_path):
    wd = tmp_path / "wd"
    evaluate(wd, "mae", "linear_probe", [40.0, 44.0])
    evaluate(wd, "mae", "finetune", [50.0])
    pretrain(wd, "mae", 0)
    rt = render(wd, tmp_path, plot=True)
    png = tmp_path / "out" / "micro" / "table1_compute.png"
    assert rt.paths["plot"] == png and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_results_section_is_replaced_between_markers_only(tmp_path):
    results = tmp_path / "RESULTS.md"
    head = "# Results\n\nHand-written intro that must survive.\n\n"
    tail = "\n\n<!-- table2:begin -->\nold table 2\n<!-- table2:end -->\n\nFooter.\n"
    results.write_text(head + "<!-- table1:begin -->\nold table 1\n<!-- table1:end -->" + tail)
    wd = tmp_path / "wd"
    evaluate(wd, "mae", "linear_probe", [40.0])
    rt = render(wd, tmp_path, results_md=results)
    text = results.read_text()
    assert text.startswith(head + "<!-- table1:begin -->\n## Table 1") and text.endswith(
        "<!-- table1:end -->" + tail
    )
    assert "old table 1" not in text and rt.markdown in text
    render(wd, tmp_path, results_md=results)  # idempotent
    assert results.read_text() == text


def test_a_missing_section_is_inserted_in_table_order(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n\nIntro.\n\n<!-- table3:begin -->\nt3\n<!-- table3:end -->\n")
    update_results_section(results, "table1", "T1")
    update_results_section(results, "table4", "T4")
    text = results.read_text()
    assert text.index("T1") < text.index("t3") < text.index("T4") and text.startswith(
        "# Results\n\nIntro.\n\n"
    )


# ------------------------------------------------------------------------------------------- regression
def _recorded_run(wd):
    evaluate(wd, "mae", "linear_probe", [40.0, 41.0, 42.0])  # 3 pretraining seeds: std 1
    for seed in range(3):
        pretrain(wd, "mae", seed, images_per_s=100.0 + seed)


def test_recorded_cells_round_trip_with_provenance(tmp_path):
    _recorded_run(tmp_path / "wd")
    cells = cells_from_records(tmp_path / "wd", "micro", [TABLE1])
    path = write_recorded(cells, tmp_path / "recorded" / "micro.csv")
    back = read_recorded(path)
    by_key = {c.key: c for c in back}
    lin = by_key["table1/mae/lin_top1"]
    assert (lin.mean, lin.std, lin.n, lin.n_pretrain_seeds) == (41.0, 1.0, 3, 3)
    assert (lin.code_commit, lin.config_hash, lin.dataset_manifest_hash) == ("c0ffee", "cfg", "manifest42")
    assert sorted(by_key) == sorted(c.key for c in cells) and compare(back, cells) == []


@pytest.mark.parametrize(
    "shift, fails", [(0.5, False), (K_SIGMA * 1.0 - 0.01, False), (K_SIGMA + 0.01, True)]
)
def test_compare_fails_exactly_beyond_the_tolerance(tmp_path, shift, fails):
    _recorded_run(tmp_path / "rec")
    recorded = cells_from_records(tmp_path / "rec", "micro", [TABLE1])
    assert tolerance(next(c for c in recorded if c.column == "lin_top1")) == K_SIGMA  # 3 x std 1 > 1 pp floor
    current_dir = tmp_path / "cur"
    evaluate(current_dir, "mae", "linear_probe", [41.0 + shift])  # one seed, as in CI
    for seed in range(3):
        pretrain(current_dir, "mae", seed, images_per_s=5.0)  # another machine: throughput is not compared
    failures = compare(recorded, cells_from_records(current_dir, "micro", [TABLE1]))
    assert bool(failures) == fails
    if fails:
        assert len(failures) == 1 and failures[0].startswith("table1/mae/lin_top1: current")


def test_a_cell_with_a_small_std_gets_its_columns_pooled_spread(tmp_path):
    evaluate(tmp_path / "rec", "mae", "linear_probe", [40.0, 40.2, 40.4])  # std 0.2
    evaluate(tmp_path / "rec", "hpm", "linear_probe", [36.0, 40.0, 44.0])  # std 4
    recorded = cells_from_records(tmp_path / "rec", "micro", [TABLE1])
    mae = next(c for c in recorded if c.key == "table1/mae/lin_top1")
    pooled = pooled_spread(recorded)[("table1", "lin_top1")]
    assert pooled == pytest.approx(math.sqrt((0.2**2 + 4**2) / 2))
    assert tolerance(mae) == ACCURACY_FLOOR_PP and tolerance(mae, pooled=pooled) == K_SIGMA * pooled
    evaluate(
        tmp_path / "cur", "mae", "linear_probe", [40.2 + 2.0]
    )  # 2 points: within 3 x pooled, not 3 x 0.2
    evaluate(tmp_path / "cur", "hpm", "linear_probe", [40.0])
    assert compare(recorded, cells_from_records(tmp_path / "cur", "micro", [TABLE1])) == []


def test_compare_uses_the_floor_without_spread_and_flops_exactly(tmp_path):
    evaluate(tmp_path / "rec", "mae", "linear_probe", [40.0])  # one pretraining seed: std unknown
    pretrain(tmp_path / "rec", "mae", 0)
    recorded = cells_from_records(tmp_path / "rec", "micro", [TABLE1])
    evaluate(tmp_path / "ok", "mae", "linear_probe", [40.0 + ACCURACY_FLOOR_PP * 0.9])
    pretrain(tmp_path / "ok", "mae", 0)
    assert compare(recorded, cells_from_records(tmp_path / "ok", "micro", [TABLE1])) == []
    evaluate(tmp_path / "bad", "mae", "linear_probe", [40.0])
    pretrain(tmp_path / "bad", "mae", 0, flops=1.01e8)  # the model changed: FLOPs must match
    failures = compare(recorded, cells_from_records(tmp_path / "bad", "micro", [TABLE1]))
    assert sorted(f.split(":")[0] for f in failures) == ["table1/mae/compute", "table1/mae/gflops_img"]


def test_compare_missing_cells_fail_unless_allowed(tmp_path):
    _recorded_run(tmp_path / "rec")
    evaluate(tmp_path / "rec", "hpm", "linear_probe", [30.0])
    recorded = cells_from_records(tmp_path / "rec", "micro", [TABLE1])
    current = [c for c in recorded if c.row != "hpm"]
    assert compare(recorded, current) == ["table1/hpm/lin_top1: missing in the current run"]
    assert compare(recorded, current, allow_missing=["table1/hpm/*"]) == []
    assert compare(current, recorded) == ["table1/hpm/lin_top1: missing in the recorded numbers"]


# ------------------------------------------------------------------------------------------- isolation
def test_renderer_imports_neither_methods_nor_downstream():
    code = (
        "import sys, tables.render, tables.regression; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('methods', 'downstream', 'torch')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_a_later_table_renders_from_its_spec_alone(tmp_path):
    """Table 3 (COCO) through the same renderer: quoted cells name their protocol and flag unverified ones."""
    wd = tmp_path / "wd"
    for method, ap in (("mae", 20.0), ("colormae", 21.0)):
        extra = {"protocol_detail": "ViTDet"}
        write_record(
            Record("micro", method, "coco", 0, {"AP_box": ap}, PROV, extra=extra, pretrain_seed=0), wd
        )
    rt = render_table(TABLES[3], wd, "micro", tmp_path / "out", results_md=tmp_path / "RESULTS.md")
    assert rt.display.loc["mae", "Paper AP box"] == "50.3 (1600 ep, Li2021)"
    assert rt.display.loc["colormae", "Paper AP box"] == "50.1* (1600 ep, ViTDet)"
    assert rt.display.loc["mae", "AP mask"] == DASH and "ViTDet" in rt.markdown
    assert (tmp_path / "out" / "micro" / "table3.tex").exists() and "<!-- table3:begin -->" in (
        tmp_path / "RESULTS.md"
    ).read_text()


# ------------------------------------------------------------------------------------------- rank agreement
def test_rank_agreement_is_kendalls_tau_against_the_papers_over_the_methods_with_both(tmp_path):
    from scipy.stats import kendalltau

    methods = ["mae", "rcmae", "hpm", "colormae", "cmtmae"]
    papers = [pn.load_paper_numbers().headline(m, "in1k_finetune", "top1").value for m in methods]
    for name, measured in {
        "same": [80.0, 80.5, 82.0, 81.0, 84.0],
        "reversed": [84.0, 83.0, 81.0, 82.0, 80.0],
    }.items():
        wd = tmp_path / name
        for m, v in zip(methods, measured):
            evaluate(wd, m, "finetune", [v])
            evaluate(wd, m, "linear_probe", [v])
        line = next(x for x in render(wd, tmp_path).markdown.splitlines() if x.startswith("Rank agreement"))
        tau = kendalltau(measured, papers).statistic
        assert (
            f"FT top-1 vs Paper FT: τ = {tau:+.2f} over 5 methods (mae, rcmae, hpm, colormae, cmtmae)" in line
        )
        assert (tau > 0.5) if name == "same" else (tau < -0.5)
        # only MAE and RC-MAE quote a linear probe: too few to rank
        assert "LIN top-1 vs Paper LIN: n/a (2 method(s) with both, 3 needed)" in line
