"""What a table run writes and where: RESULTS.md only when intended (``pipeline.results_md_choice``), the
rendered tables under the work dir, the plot's reference lines, a quiet console."""

from __future__ import annotations

import shlex
from pathlib import Path
from types import SimpleNamespace

import pytest

from reproduce import pipeline, record, table1, table2, table3, table4, table5
from reproduce.pipeline import RESULTS_MD, TableRun, prepare_table, results_md_choice, results_md_for
from tables.records import Record, write_record
from tables.render import reference_lines, render_table
from tables.specs import BASELINE, TABLE1
from tests.test_tables import PROV, evaluate, pretrain

TABLE_SCRIPTS = (table1, table2, table3, table4, table5)


# ------------------------------------------------------------------------------------------- RESULTS.md
@pytest.mark.parametrize("script", TABLE_SCRIPTS, ids=lambda m: m.__name__.split(".")[-1])
@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--budget", "tiny"],  # the default, given explicitly
        ["--work-dir", "/tmp/w", "--out-dir", "/tmp/o", "--data-root", "/tmp/d", "--verbose"],
    ],
)
def test_the_default_run_updates_results_md(script, argv):
    choice = results_md_for(script.parse_args(argv))
    assert choice.path == RESULTS_MD and choice.note == ""


@pytest.mark.parametrize(
    "script, argv, changed",
    [
        (table1, ["--budget", "micro"], "--budget micro"),
        (table1, ["--methods", "mae"], "--methods mae"),
        (table1, ["--seeds", "1"], "--seeds 1"),
        (table1, ["--checkpoint", "x=/tmp/x.pth"], "--checkpoint x=/tmp/x.pth"),
        (table1, ["--skip", "finetune"], "--skip finetune"),
        (table1, ["--no-baseline"], "--no-baseline"),
        (table1, ["--equalize", "flops"], "--equalize flops"),
        (table2, ["--methods", "mae,hpm"], "--methods mae,hpm"),
        (table3, ["--protocol", "fpn_li2021"], "--protocol fpn_li2021"),
        (table4, ["--seeds", "3"], "--seeds 3"),
        (table5, ["--rows", "mae"], "--rows mae"),
        (table5, ["--budget", "micro", "--skip", "finetune"], "--budget micro --skip finetune"),
    ],
)
def test_any_other_run_leaves_results_md_and_says_how_to_update_it(script, argv, changed):
    args = script.parse_args([*argv, "--work-dir", "/tmp/my work"])
    choice = results_md_for(args)
    assert choice.path is None
    assert choice.note.startswith("RESULTS.md left unchanged") and "\n" not in choice.note
    assert f"and this run sets {changed}; to update it: " in choice.note
    command = choice.note.split("to update it: ", 1)[1]
    name = script.__name__.split(".")[-1]
    given = [*argv, "--work-dir", "/tmp/my work"]
    assert shlex.split(command) == ["python", f"reproduce/{name}.py", *given, "--results-md"]
    # that command does update it
    assert results_md_for(script.parse_args(shlex.split(command)[2:])).path == RESULTS_MD


def test_results_md_flag_asks_for_it_and_no_results_md_refuses_it_even_by_default():
    assert results_md_for(
        table1.parse_args(["--budget", "micro", "--methods", "mae", "--results-md"])
    ).path == (RESULTS_MD)
    refused = results_md_for(table1.parse_args(["--no-results-md"]))
    assert refused.path is None and refused.note.startswith("RESULTS.md left unchanged: --no-results-md;")
    assert refused.note.endswith("to update it: python reproduce/table1.py")
    with pytest.raises(SystemExit):  # one or the other
        table1.parse_args(["--results-md", "--no-results-md"])


@pytest.mark.parametrize(
    "changed, requested, writes",
    [
        ([], None, True),
        ([], True, True),
        ([], False, False),
        (["--budget micro"], None, False),
        (["--budget micro"], True, True),
        (["--budget micro"], False, False),
    ],
)
def test_the_rule(changed, requested, writes, tmp_path):
    choice = results_md_choice(changed, requested, ["python", "reproduce/table1.py"], tmp_path / "R.md")
    assert (choice.path == tmp_path / "R.md") is writes and (choice.path is None) is not writes
    assert bool(choice.note) is not writes


def test_prepare_table_passes_the_choice_and_record_py_never_writes_results_md(monkeypatch, tmp_path):
    opened = []

    class Opened(Exception):
        pass

    def fake_open_table(budget, **kw):
        opened.append(kw)
        raise Opened

    monkeypatch.setattr(pipeline, "open_table", fake_open_table)
    for argv in (["--budget", "micro"], []):
        with pytest.raises(Opened):
            prepare_table(table1.parse_args(argv))
    micro, default = opened
    assert micro["results_md"] is None and "--results-md" in micro["results_md_note"]
    assert default["results_md"] == RESULTS_MD and default["results_md_note"] == ""
    assert micro["out_dir"] is None  # TableRun's default: <work-dir>/tables

    monkeypatch.setattr(record, "open_table", fake_open_table)
    with pytest.raises(Opened):
        record.main(["--budget", "micro", "--work-dir", str(tmp_path)])
    assert opened[-1]["results_md"] is None


# ------------------------------------------------------------------------------------------- output folder
@pytest.mark.parametrize("script", TABLE_SCRIPTS, ids=lambda m: m.__name__.split(".")[-1])
def test_rendered_tables_go_under_the_work_dir_by_default(script, tmp_path):
    args = script.parse_args(["--work-dir", str(tmp_path)])
    assert args.out_dir is None
    t = TableRun(cfg=None, data=None, work_dir=tmp_path, names=[])
    assert t.out_dir == tmp_path / "tables" and t.results_md is None
    assert TableRun(None, None, tmp_path, [], out_dir=tmp_path / "o").out_dir == tmp_path / "o"


def test_render_table_writes_under_the_work_dir_by_default(tmp_path):
    wd = tmp_path / "wd"
    evaluate(wd, "mae", "linear_probe", [40.0])
    rt = render_table(TABLE1, wd, "micro", results_md=None, plot=False)
    assert rt.paths["md"] == wd / "tables" / "micro" / "table1.md" and rt.paths["md"].is_file()
    assert "results" not in rt.paths
    # the terminal gets the table without the provenance and the notes, which the file keeps
    assert rt.summary.startswith("## Table 1:") and "| mae |" in rt.summary
    assert "Measured here" not in rt.summary and "\n- " not in rt.summary
    assert "Measured here" in rt.markdown and "\n- " in rt.markdown


def test_show_prints_the_table_every_file_and_what_happened_to_results_md(tmp_path, capsys):
    paths = {k: tmp_path / f"table1.{k}" for k in ("md", "csv", "tex")} | {"plot": tmp_path / "t.png"}
    rendered = SimpleNamespace(summary="| Method |\n", paths=paths, spec=TABLE1, budget="micro")
    TableRun(None, None, tmp_path, [], results_md_note="RESULTS.md left unchanged: x; to update it: y").show(
        rendered, visualisation=tmp_path / "v.png"
    )
    out = capsys.readouterr().out
    for kind, path in [*paths.items(), ("visualisation", tmp_path / "v.png")]:
        assert f": {path}\n" in out, kind
    assert "markdown:" in out and "LaTeX:" in out and out.rstrip().endswith("to update it: y")
    assert f"records: {tmp_path / 'records' / 'micro'}\n" in out

    updated = SimpleNamespace(
        summary="", paths=paths | {"results": tmp_path / "RESULTS.md"}, spec=TABLE1, budget="micro"
    )
    TableRun(None, None, tmp_path, [], results_md_note="unused").show(updated)
    out = capsys.readouterr().out
    assert f"RESULTS.md (table1 section): {tmp_path / 'RESULTS.md'}" in out and "unused" not in out


# ------------------------------------------------------------------------------------------- the plot
def _records_with_classes(wd: Path, classes: dict[str, int] | None) -> None:
    """mae pretrained and probed, random-init probed (two seeds), each record with ``data.num_classes``."""
    pretrain(wd, "mae", 0)
    for method, values in (("mae", [40.0]), (BASELINE, [20.0, 24.0])):
        for seed, value in enumerate(values):
            extra = {"data": {"num_classes": classes[method]}} if classes else {}
            write_record(
                Record(
                    "micro", method, "linear_probe", 0, {"top1": value}, PROV, extra=extra, pretrain_seed=seed
                ),
                wd,
            )


def _plotted(monkeypatch, wd: Path, tmp_path: Path):
    """Render Table 1 with its plot; returns the figure the plot drew."""
    import matplotlib.pyplot as plt

    figures = []
    close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: (figures.append(fig), close(fig)))
    rt = render_table(TABLE1, wd, "micro", tmp_path / "out", results_md=None, plot=True)
    assert rt.paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return rt, figures[-1]


def test_the_plot_draws_random_init_and_chance_as_labelled_lines(monkeypatch, tmp_path):
    wd = tmp_path / "wd"
    _records_with_classes(wd, {"mae": 16, BASELINE: 16})
    rt, fig = _plotted(monkeypatch, wd, tmp_path)
    lines = reference_lines(rt, "lin_top1", 16)
    assert [(x.label, x.value, x.kind) for x in lines] == [
        (f"{BASELINE}: 22.0", 22.0, "row"),
        ("chance: 100/16 classes = 6.2", 6.25, "chance"),
    ]
    assert lines[0].std == pytest.approx(2 * 2**0.5)
    probe_panel = fig.axes[0]
    legend = [t.get_text() for t in probe_panel.get_legend().get_texts()]
    assert legend == [f"{BASELINE}: 22.0", "chance: 100/16 classes = 6.2"]
    drawn = sorted(line.get_ydata()[0] for line in probe_panel.get_lines() if len(line.get_xdata()) == 2)
    assert drawn == [6.25, 22.0]
    # the fine-tune panel has neither records nor lines
    assert fig.axes[1].get_legend() is None


@pytest.mark.parametrize("classes", [None, {"mae": 16, BASELINE: 10}], ids=["not recorded", "disagreeing"])
def test_chance_is_left_out_unless_the_records_say_how_many_classes(monkeypatch, tmp_path, classes):
    wd = tmp_path / "wd"
    _records_with_classes(wd, classes)
    _, fig = _plotted(monkeypatch, wd, tmp_path)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [f"{BASELINE}: 22.0"]


# ------------------------------------------------------------------------------------------- the console
def test_quiet_console_keeps_the_log_file_and_shows_each_warning_once(tmp_path, capsys, monkeypatch):
    from mmengine.runner import Runner

    from downstream.mm_run import quiet_console

    def runner(name: str):
        return SimpleNamespace(_experiment_name=name, _log_dir=str(tmp_path), timestamp=name)

    # what mmengine's load_or_resume does when there is nothing to resume: a bare print
    monkeypatch.setattr(Runner, "load_or_resume", lambda self: print("Did not find last_checkpoint"))
    build, resume = Runner.build_logger, Runner.load_or_resume
    with quiet_console():
        for name in ("quiet-a", "quiet-b"):  # two Runners, two loggers
            r = runner(name)
            r.logger = logger = Runner.build_logger(r, log_file=str(tmp_path / f"{name}.log"))
            logger.info("config dump")
            logger.warning("deprecated thing")
            logger.warning("encoder.pos_embed is skipped since its requires_grad=False")  # expected
            logger.warning("teacher.blocks.0.norm1.weight is skipped since its requires_grad=False")  # too
            Runner.load_or_resume(r)
    assert Runner.build_logger is build and Runner.load_or_resume is resume
    out = capsys.readouterr().out
    assert "config dump" not in out and out.count("deprecated thing") == 1 and "last_checkpoint" not in out
    assert "pos_embed" not in out and "teacher" not in out  # expected (EXPECTED_WARNINGS): in the log file
    for name in ("quiet-a", "quiet-b"):
        log = (tmp_path / f"{name}.log").read_text()
        assert (
            "config dump" in log and "Did not find last_checkpoint" in log and "pos_embed is skipped" in log
        )
    logger.info("after")  # restored on exit
    assert "after" in capsys.readouterr().out
    for handler in logger.handlers:
        handler.close()


def test_quiet_console_shows_each_python_warning_once():
    import warnings

    from downstream.mm_run import quiet_console

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_console():
            for _ in range(3):
                warnings.warn("old api", DeprecationWarning, stacklevel=1)
            warnings.warn("other", UserWarning, stacklevel=1)
        warnings.warn("old api", DeprecationWarning, stacklevel=1)  # restored on exit
    assert [str(w.message) for w in caught] == ["old api", "other", "old api"]


# ------------------------------------------------------------------------------------------- progress
def test_progress_has_a_line_per_job_in_a_log_and_a_line_per_row_on_a_terminal(monkeypatch, capsys):
    import sys

    monkeypatch.setattr(pipeline, "protocol_record", lambda result, **kw: Path("record.json"))
    rows = [pipeline.Row(f"ext:{n}", 0, "file", Path(n)) for n in "ab"]
    probe = pipeline.Protocol("probe", "linear probe", lambda encoder, seed: {}, seeds=(0, 1))
    jobs = pipeline.plan(rows, [probe])  # per row: read the file, then two probe seeds
    run = pipeline.Pipeline(SimpleNamespace(budget="micro"), SimpleNamespace(manifest_hash="h"), Path("w"))

    run.run(jobs)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  (")[0] for line in lines[:-1]] == [
        f"[{i + 1}/6] {j.label}" for i, j in enumerate(jobs)
    ]
    assert lines[-1].startswith("done: 6 jobs in ")

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    run = pipeline.Pipeline(SimpleNamespace(budget="micro"), SimpleNamespace(manifest_hash="h"), Path("w"))
    run.run(jobs)
    screen = [line.rsplit("\r\x1b[K", 1)[-1] for line in capsys.readouterr().out.split("\n")[:-1]]
    assert [line.split("  (")[0] for line in screen[:-1]] == [
        "[3/6] ext:a: linear probe, seed 1",
        "[6/6] ext:b: linear probe, seed 1",
    ]
