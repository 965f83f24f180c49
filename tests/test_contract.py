"""The harness reads a model only through the contract ``MIMModel`` declares (methods/README.md), never
through attributes a method happens to have."""

from __future__ import annotations

import ast
import inspect
import textwrap
from pathlib import Path

from methods.base import MIMModel

REPO = Path(__file__).resolve().parents[1]
#: the harness modules that hold a model, and the names they hold it under
HARNESS = [f"reproduce/{name}.py" for name in ("pretrain", "harness", "clip_teacher_files", "bench")]
MODEL_NAMES = {"model", "probe", "reference"}


def declared() -> set[str]:
    """What MIMModel declares: its class attributes and methods, and what its ``__init__`` assigns."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(MIMModel)))
    init = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    assigned = {
        t.attr
        for n in ast.walk(init)
        for t in getattr(n, "targets", [getattr(n, "target", None)])
        if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"
    }
    return set(dir(MIMModel)) | assigned


def model_reads(path: Path) -> set[str]:
    """Attributes read on a model: ``model.X``, ``unwrap(...).X`` and a spec's ``.cls.X``."""
    reads = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Attribute):
            continue
        base = node.value
        if isinstance(base, ast.Name) and base.id in MODEL_NAMES:
            reads.add(node.attr)
        elif isinstance(base, ast.Call) and getattr(base.func, "id", None) == "unwrap":
            reads.add(node.attr)
        elif isinstance(base, ast.Attribute) and base.attr == "cls":
            reads.add(node.attr)
    return reads


def test_the_harness_reads_only_what_mimmodel_declares():
    contract = declared()
    for file in HARNESS:
        undeclared = model_reads(REPO / file) - contract
        assert not undeclared, f"{file} reads {sorted(undeclared)}, which MIMModel does not declare"


def test_the_harness_never_probes_a_model_with_getattr():
    for file in HARNESS:
        for node in ast.walk(ast.parse((REPO / file).read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("getattr", "hasattr"):
                target = node.args[0]
                assert not (isinstance(target, ast.Name) and target.id in MODEL_NAMES), (
                    f"{file}:{node.lineno}: {ast.unparse(node)} (declare it on MIMModel instead)"
                )


def test_the_contract_check_sees_a_method_only_attribute():
    assert "extra_cost" in declared() and "uses_clip_teacher" in declared()
    assert "guidance" not in declared()  # CMT-MAE's own method: the harness may not read it
