"""Table 1 end to end on the micro budget: a copied method folder gets its own row with no other edit."""

from __future__ import annotations

import pytest

import methods
from reproduce import table1
from reproduce.pipeline import RESULTS_MD
from tables.specs import BASELINE

pytestmark = pytest.mark.e2e


def test_a_copy_of_the_mae_folder_appears_as_a_table1_row(mae_copy, tmp_path, capsys):
    assert "maecopy" in methods.list_methods()
    results_md = RESULTS_MD.read_bytes()
    argv = ["--budget", "micro", "--methods", "maecopy", "--seeds", "1", "--skip", "finetune,knn"]
    table1.main([*argv, "--work-dir", str(tmp_path)])
    # not the default run: RESULTS.md is left as it was, and the run says how to update it
    assert RESULTS_MD.read_bytes() == results_md
    printed = capsys.readouterr().out
    assert "RESULTS.md left unchanged" in printed and printed.rstrip().endswith("--results-md")
    # everything under the work dir: the rendered tables in <work-dir>/tables/<budget>/
    out = tmp_path / "tables"
    for name in ("table1.md", "table1.csv", "table1.tex", "table1_compute.png"):
        assert f": {out / 'micro' / name}\n" in printed
    markdown = (out / "micro" / "table1.md").read_text()
    row = next(line for line in markdown.splitlines() if line.startswith("| maecopy |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] != "—"  # the linear probe ran: a measured top-1
    assert float(cells[1].strip("*").split()[0]) > 0
    assert (tmp_path / "records" / "micro" / "maecopy" / "pretrain" / "seed0.json").is_file()
    # the random-init baseline row comes with every table run, evaluated but never pretrained
    baseline = next(line for line in markdown.splitlines() if line.startswith(f"| {BASELINE} |"))
    assert float(baseline.strip("|").split("|")[1].strip(" *≈").split()[0]) > 0
    assert not (tmp_path / "records" / "micro" / BASELINE / "pretrain").exists()
