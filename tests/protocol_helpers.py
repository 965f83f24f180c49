"""Checks shared by the downstream-protocol tests (test_ade20k.py, test_coco.py, test_davis_protocol.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from downstream.recipe import RecipeError, resolve_recipe
from reproduce import data_root


def assert_recipe_error(micro: Any, section: str, change: Callable[[dict], Any], message: str) -> None:
    """``change`` applied to the micro budget's ``section`` makes ``resolve_recipe`` raise a RecipeError that
    matches ``message``, is one line, and names the budget file."""
    cfg = {"budget": "micro", section: getattr(micro, section).to_dict()}
    change(cfg[section])
    with pytest.raises(RecipeError, match=message) as e:
        resolve_recipe(cfg, section)
    assert "\n" not in str(e.value) and "reproduce/budgets/micro.py" in str(e.value)


def bad_root_exit(
    table: ModuleType, folder: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> str:
    """What the command line of ``table`` (micro budget, MAE) prints on a data root holding only ``folder``,
    with pretraining stubbed out. Checked here: exit status 2, one line on stderr starting ``error: ``, and
    no pretraining started before it."""
    from reproduce import cli, pipeline

    calls = []
    monkeypatch.setattr(pipeline, "pretrain_encoder", lambda *a, **k: calls.append(a))
    data = tmp_path / "data"
    (data / folder).mkdir(parents=True)
    monkeypatch.setattr(data_root, "prepare", lambda cfg, root: data_root.DataRoot(data, "listing:test"))
    with pytest.raises(SystemExit) as e:
        cli.run(table.main, ["--budget", "micro", "--methods", "mae", "--work-dir", str(tmp_path)])
    message = capsys.readouterr().err
    assert e.value.code == 2 and message.startswith("error: ") and message.count("\n") == 1
    assert not calls
    return message
