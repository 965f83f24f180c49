"""Adding a method is one folder: a copy of ``methods/mae`` under a new name, and ``BlockMAE`` written from
the two code blocks of methods/README.md's "Adding a method" word for word, each get their jobs in every
table script's plan and their rows in Tables 1-5 (Table 5: a method that declares ablations), with no other
edit."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import torch

import methods
from methods.registry import get_spec, list_ablations
from reproduce import pipeline, table1, table2, table3, table4, table5
from reproduce.budget import load_budget
from tables.records import REQUIRED_PROVENANCE, Record, write_record
from tables.render import render_table

README = Path(methods.__file__).parent / "README.md"
PROV = {k: "x" for k in REQUIRED_PROVENANCE} | {"world_size": 1, "batch_size": 8, "seed": 0}
#: (table script, the protocol its records carry and a metric of it)
TABLES = {1: ("linear_probe", "top1"), 2: ("ade20k", "mIoU"), 3: ("coco", "AP_box"), 4: ("davis", "JF_mean")}


def readme_blocks() -> tuple[str, str]:
    """The model.py and config.py code blocks of the README's 'Adding a method' section."""
    section = README.read_text().split("## Adding a method", 1)[1]
    blocks = [textwrap.dedent(b) for b in re.findall(r"```python\n(.*?)```", section, re.S)]
    assert len(blocks) == 2, "the README's 'Adding a method' shows model.py, then config.py"
    return blocks[0], blocks[1]


@pytest.fixture()
def blockmae(scratch_root):
    folder = scratch_root / "blockmae"
    folder.mkdir()
    model, config = readme_blocks()
    (folder / "__init__.py").write_text("")
    (folder / "model.py").write_text(model)
    (folder / "config.py").write_text(config)
    return folder


def test_the_readme_method_is_mae_with_only_its_mask_changed(blockmae):
    assert "blockmae" in methods.list_methods() and list_ablations("blockmae") == ["blockmae-window-1"]
    model, mae = methods.build("blockmae"), methods.build("mae")
    assert type(model).__mro__[1] is type(mae)  # a direct subclass of MAE
    assert model.state_dict().keys() == mae.state_dict().keys()  # no network of its own
    images, ids = torch.randn(4, 3, 32, 32), torch.arange(4)
    blocky, uniform = model.sample_mask(images, ids).mask, mae.sample_mask(images, ids).mask
    assert torch.equal(blocky.sum(1), uniform.sum(1)) and not torch.equal(blocky, uniform)
    window_1 = methods.build("blockmae-window-1").sample_mask(images, ids).mask
    assert torch.equal(window_1, uniform)  # a window of one patch: MAE's masks
    losses = model.loss(images, sample_ids=ids)
    assert set(losses) == {"loss_rec"} and torch.isfinite(losses["loss_rec"])


def plans(tmp_path: Path, capsys) -> dict[int, str]:
    """What each table script would run (``--plan``) on the micro budget with the default rows."""
    t = pipeline.TableRun(
        load_budget("micro"), None, tmp_path, pipeline.selected_methods(None), plan_only=True
    )
    for run in (table1.run_table, table2.run_table, table3.run_table, table4.run_table):
        assert run(t) is None
    out = {n: text for n, text in zip(TABLES, capsys.readouterr().out.split(" jobs on budget ")[1:])}
    assert table5.run_table(t) is None
    return out | {5: capsys.readouterr().out}


def write_rows(work: Path, method: str, ablation_of: str | None = None) -> None:
    extra = {"ablation": ablation_of is not None, "ablation_of": ablation_of}
    write_record(Record("micro", method, "pretrain", 0, {"final_loss": 0.1}, PROV, extra=extra), work)
    for protocol, metric in TABLES.values():
        write_record(Record("micro", method, protocol, 0, {metric: 50.0}, PROV, pretrain_seed=0), work)


@pytest.mark.parametrize("kind", ["copy of methods/mae", "BlockMAE from the README"])
def test_a_new_method_folder_gets_jobs_and_rows_in_tables_1_to_5(kind, request, tmp_path, capsys):
    name = "maecopy" if kind.startswith("copy") else "blockmae"
    request.getfixturevalue("mae_copy" if name == "maecopy" else "blockmae")
    assert name in methods.list_methods()
    plan = plans(tmp_path, capsys)
    for number in (1, 2, 3, 4):
        assert f"{name} (pretrain seed 0): pretrain" in plan[number], number
    work = tmp_path / "records-of-a-run"
    write_rows(work, name)
    ablations = list_ablations(name)
    for ablation in ablations:
        write_rows(work, ablation, ablation_of=get_spec(ablation).base)
    for number in (1, 2, 3, 4, 5):
        markdown = render_table(number, work, "micro", tmp_path / "out", results_md=None, plot=False).markdown
        rows = [line.split("|")[1].strip() for line in markdown.splitlines() if line.startswith("| ")]
        if number == 5 and not ablations:  # Table 5 holds the methods that declare ablations
            assert name not in rows and f"{name} (pretrain seed 0)" not in plan[5]
            continue
        assert name in rows, (number, rows)
        if ablations:  # an ablation is a row of Table 5 only
            assert all(a in rows for a in ablations) == (number == 5), (number, rows)
    if ablations:
        assert all(f"{a} (pretrain seed 0): pretrain" in plan[5] for a in [name, *ablations])
