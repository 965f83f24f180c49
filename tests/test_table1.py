"""Table 1 end to end on the micro budget: a copied method folder gets its own row with no other edit."""

from __future__ import annotations

import pytest

import methods
from reproduce import table1
from tables.specs import BASELINE

pytestmark = pytest.mark.e2e


def test_a_copy_of_the_mae_folder_appears_as_a_table1_row(mae_copy, tmp_path):
    assert "maecopy" in methods.list_methods()
    out = tmp_path / "out"
    table1.main(
        [
            "--budget",
            "micro",
            "--methods",
            "maecopy",
            "--seeds",
            "1",
            "--skip",
            "finetune,knn",
            "--work-dir",
            str(tmp_path),
            "--out-dir",
            str(out),
            "--no-results-md",
        ]
    )
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
