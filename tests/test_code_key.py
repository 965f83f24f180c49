"""The run key's code part changes when training changes, and only then (reproduce/code_key.py)."""

from __future__ import annotations

import pytest

from reproduce.code_key import source_fingerprint, training_modules


def test_a_method_depends_on_what_it_imports_not_on_the_other_methods():
    mae = training_modules("methods.mae.model")
    assert {"methods.mae.model", "methods.base", "methods.decoder", "reproduce.pretrain"} <= set(mae)
    assert not any(name.startswith(("methods.colormae", "methods.hpm", "methods.cmtmae")) for name in mae)
    assert "methods.colormae.noise" in training_modules("methods.colormae.model")


def test_comments_docstrings_and_formatting_do_not_count_but_code_does():
    source = 'def f(x):\n    """Square."""\n    return x ** 2\n'
    same = (
        '"""A module docstring."""\n\n\ndef f(x):  # a comment\n    """Squares x, said otherwise."""\n'
        "    return (x**2)\n"
    )
    assert source_fingerprint(source) == source_fingerprint(same)
    assert source_fingerprint(source) != source_fingerprint(source.replace("** 2", "** 3"))


@pytest.fixture()
def plugin(scratch_root, mae_copy):
    """A method folder (a copy of MAE) and the run-key code hash of it and of MAE."""
    from methods.registry import discover
    from reproduce.pretrain import training_code_hash

    discover()
    model = mae_copy / "model.py"

    def hashes() -> tuple[str, str]:
        return training_code_hash("maecopy"), training_code_hash("mae")

    return model, hashes


def test_a_changed_loss_retrains_and_a_changed_docstring_does_not(plugin):
    model, hashes = plugin
    before, mae = hashes()
    source = model.read_text()
    model.write_text(source.replace('"""', '"""Edited prose. ', 1) + "\n# a comment\n")
    assert hashes() == (before, mae)
    assert "** 2" in source  # MAE's squared error, the loss a method's change would touch
    model.write_text(source.replace("** 2", "** 3", 1))
    changed, mae_after = hashes()
    assert changed != before and mae_after == mae  # the edited method retrains; MAE does not
