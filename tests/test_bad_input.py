"""Bad input through the real command lines, as a new user meets it: each case runs a script as a subprocess
and must exit non-zero with one line naming the file or key (no traceback), before any training step, leaving
the work dir and RESULTS.md as they were. ``CASES_RUN`` collects (class, command, line, seconds) for the table
in the resolving note (``python -m pytest tests/test_bad_input.py -s`` prints it)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.golden.traces import BUDGET

pytestmark = pytest.mark.e2e  # subprocesses: about 3 min on the 2-core machine

ROOT = Path(__file__).resolve().parents[1]
RESULTS_MD = ROOT / "RESULTS.md"
CASES_RUN: list[tuple[str, str, str, float]] = []


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the sha256 of its bytes."""
    files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def refused(
    kind: str, script: str, *args: str, work: Path, names: tuple[str, ...], within_s: float = 60.0
) -> str:
    """Run ``script args`` and check the refusal: exit status 2, the last stderr line is ``error: ...``
    naming every string of ``names``, no traceback, no training step, nothing changed under ``work`` or in
    RESULTS.md, within ``within_s`` seconds. Returns the line."""
    before, results = snapshot(work), RESULTS_MD.read_bytes()
    cmd = [sys.executable, script if script.startswith("-") else str(ROOT / script), *args]
    if script.startswith("-"):  # python -m module
        cmd = [sys.executable, *script.split(), *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "MIM_DEBUG": "0"})
    seconds = time.perf_counter() - start
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, f"{kind}: exit {proc.returncode}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, f"{kind}: a traceback\n{proc.stderr[-3000:]}"
    line = lines[-1]
    assert line.startswith("error: ") or ": error: " in line, line
    assert all(name in line for name in names), (kind, line)
    assert "Iter(train)" not in proc.stdout + proc.stderr, f"{kind}: training started before the refusal"
    assert seconds < within_s, f"{kind}: refused after {seconds:.1f} s"
    assert snapshot(work) == before, f"{kind}: the work dir changed"
    assert RESULTS_MD.read_bytes() == results, f"{kind}: RESULTS.md changed"
    CASES_RUN.append((kind, " ".join([Path(script).name, *args]).replace(str(work), "WORK"), line, seconds))
    return line


def renamed(state: dict, old: str, new: str) -> dict:
    return {new if k == old else k: v for k, v in state.items()}


@pytest.fixture(scope="module")
def encoder_files(tmp_path_factory):
    """A good micro encoder file and three broken ones: a renamed key, a missing key, a wrong shape."""
    from methods.backbone import build_vit
    from methods.encoder_file import encoder_payload, export_encoder

    folder = tmp_path_factory.mktemp("encoders")
    export_encoder(build_vit("micro"), folder / "good.pth", {"method": "test"})
    payload = torch.load(folder / "good.pth", weights_only=True)
    state = dict(payload["state_dict"])
    broken = {
        "renamed": {
            **{k: v for k, v in state.items() if k != "norm.weight"},
            "norm.gamma": state["norm.weight"],
        },
        "missing": {k: v for k, v in state.items() if k != "blocks.0.attn.proj.bias"},
        "wrong-shape": {**state, "cls_token": torch.zeros(1, 1, 32)},
    }
    for name, s in broken.items():
        torch.save(encoder_payload(s, payload["meta"]), folder / f"{name}.pth")
    return folder


def test_unknown_method_and_budget(tmp_path):
    refused(
        "unknown method",
        "reproduce/pretrain.py",
        "--method",
        "nosuch",
        "--budget",
        "micro",
        "--work-dir",
        str(tmp_path / "w"),
        work=tmp_path,
        names=("nosuch", "known: "),
        within_s=30,
    )
    refused(
        "unknown budget",
        "reproduce/table2.py",
        "--budget",
        "nosuch",
        "--work-dir",
        str(tmp_path),
        work=tmp_path,
        names=("nosuch", "available: "),
        within_s=30,
    )
    refused(
        "unknown method",
        "reproduce/table1.py",
        "--budget",
        "micro",
        "--methods",
        "mae,nosuch",
        "--work-dir",
        str(tmp_path),
        work=tmp_path,
        names=("nosuch",),
        within_s=30,
    )


@pytest.mark.parametrize(
    ("case", "names"),
    [
        ("renamed", ("norm.gamma", "norm.weight")),
        ("missing", ("blocks.0.attn.proj.bias",)),
        ("wrong-shape", ("cls_token", "(1, 1, 32)")),
    ],
)
def test_a_broken_checkpoint_is_refused_before_any_row_runs(encoder_files, tmp_path, case, names):
    path = encoder_files / f"{case}.pth"
    refused(
        f"--checkpoint, {case} key",
        "reproduce/table1.py",
        "--budget",
        "micro",
        "--methods",
        "mae",
        "--checkpoint",
        f"ext={path}",
        "--work-dir",
        str(tmp_path),
        work=tmp_path,
        names=(str(path), *names),
        within_s=30,
    )


def test_a_converter_names_every_key_that_does_not_map(tmp_path):
    """The official-format MAE training checkpoint of the parity fixture, broken three ways at once."""
    checkpoint = torch.load(ROOT / "tests/fixtures/mae_parity/checkpoint.pth", weights_only=True)
    state = dict(checkpoint["model"])
    state["blocks.0.norm1.scale"] = state.pop("blocks.0.norm1.weight")  # renamed
    del state["norm.bias"]  # missing
    state["decoder_pred.bias"] = torch.zeros(7)  # wrong shape
    src, dst = tmp_path / "broken.pth", tmp_path / "out" / "converted.pth"
    torch.save({"model": state, "epoch": 0}, src)
    line = refused(
        "converter, broken state dict",
        "-m methods.mae.convert",
        str(src),
        str(dst),
        work=tmp_path / "out",
        names=("blocks.0.norm1.scale", "blocks.0.norm1.weight", "norm.bias", "decoder.pred.bias"),
        within_s=30,
    )
    assert not dst.exists() and "missing" in line and "unexpected" in line and "wrong shape" in line


def golden_pretrain(golden_setting, work: Path, *options: str) -> list[str]:
    """The command line of an MAE pretraining on the golden budget and data, with ``--cfg-options``."""
    script = str(ROOT / "reproduce/pretrain.py")
    data = ["--data-root", str(golden_setting.data.root), "--work-dir", str(work)]
    return [
        sys.executable,
        script,
        "--method",
        "mae",
        "--budget",
        str(BUDGET),
        *data,
        "--cfg-options",
        *options,
    ]


def test_a_nan_loss_stops_with_the_step_and_the_last_good_checkpoint(golden_setting, tmp_path):
    """A learning rate that blows the loss up: the run stops at the first non-finite loss, in one line."""
    work = tmp_path / "run"
    cmd = golden_pretrain(
        golden_setting, work, "pretrain.base_lr=1e12", "pretrain.checkpoint_interval_epochs=1"
    )
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    line = [x for x in proc.stderr.splitlines() if x.strip()][-1]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert line.startswith("error: non-finite loss at step") and "last good checkpoint" in line, line
    assert not (work / "encoder.pth").exists()
    CASES_RUN.append(
        (
            "NaN loss (during the run)",
            "pretrain.py --budget golden --cfg-options pretrain.base_lr=1e12",
            line,
            seconds,
        )
    )


def test_resume_removes_what_a_kill_during_a_save_left(golden_setting, tmp_path):
    """A SIGKILL between a checkpoint's write and its rename leaves ``.iter_8.pth.XXXX.tmp``: --resume removes
    it, says so, and finishes the run."""
    work = tmp_path / "run"
    common = golden_pretrain(golden_setting, work, "pretrain.checkpoint_interval_epochs=2")
    crashed = subprocess.run([*common, "--exit-after-step", "8"], cwd=ROOT, capture_output=True, text=True)
    assert crashed.returncode == 3, crashed.stderr[-2000:]
    stale = work / ".iter_16.pth.k1ll3d.tmp"
    stale.write_bytes(os.urandom(1024))  # what the kill during the next save would have left
    start = time.perf_counter()
    resumed = subprocess.run([*common, "--resume"], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not stale.exists() and (work / "encoder.pth").is_file()
    said = next(x for x in (resumed.stdout + resumed.stderr).splitlines() if f"removed {stale}" in x)
    CASES_RUN.append(
        (
            "SIGKILL during a save, then --resume (exit 0)",
            "pretrain.py --budget golden --resume",
            said,
            seconds,
        )
    )


@pytest.fixture()
def real_root(golden_setting, tmp_path):
    """A copy of the golden SynthScenes folders as a real-data root (no manifest: nothing regenerates it)."""
    root = tmp_path / "real"
    for layout in ("imagenet", "ade20k", "coco"):
        shutil.copytree(golden_setting.data.root / layout, root / layout)
    return root


def first(folder: Path, pattern: str) -> Path:
    return sorted(folder.rglob(pattern))[0]


def out_of_range_label(path: Path) -> None:
    labels = np.array(Image.open(path))
    labels[0, 0] = 200  # one pixel outside the 150 ADE20K classes
    Image.fromarray(labels).save(path)


def coco_without(path: Path, key: str) -> None:
    content = json.loads(path.read_text())
    del content["annotations"][0][key]
    path.write_text(json.dumps(content))


BROKEN_DATA = {
    # class: (how the copy is broken -> the file or folder the line must name, the script and its flags)
    "missing root": (lambda root: root / "nowhere", "reproduce/pretrain.py", ["--method", "mae"]),
    "empty class": (
        lambda root: (root / "imagenet" / "train" / "empty").mkdir() or root / "imagenet" / "train" / "empty",
        "reproduce/pretrain.py",
        ["--method", "mae"],
    ),
    "truncated image": (
        lambda root: truncate(first(root / "imagenet" / "train", "*.png")),
        "reproduce/pretrain.py",
        ["--method", "mae"],
    ),
    "label out of range, train": (
        lambda root: out_of_range_label(p := first(root / "ade20k/annotations/training", "*.png")) or p,
        "reproduce/table2.py",
        ["--methods", "mae", "--plan"],
    ),
    "label out of range, val": (
        lambda root: out_of_range_label(p := first(root / "ade20k/annotations/validation", "*.png")) or p,
        "reproduce/table2.py",
        ["--methods", "mae", "--plan"],
    ),
    "invalid JSON": (
        lambda root: (p := root / "coco/annotations/instances_train2017.json").write_text("{") and p,
        "reproduce/table3.py",
        ["--methods", "mae", "--plan"],
    ),
    "COCO file missing a key": (
        lambda root: coco_without(p := root / "coco/annotations/instances_val2017.json", "area") or p,
        "reproduce/table3.py",
        ["--methods", "mae", "--plan"],
    ),
}


def truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize("kind", BROKEN_DATA)
def test_broken_data_is_refused_before_any_work(kind, real_root, tmp_path):
    """On the small budget (real data: nothing is regenerated), one line naming the broken file."""
    breaks, script, flags = BROKEN_DATA[kind]
    named = breaks(real_root)
    data_root = named if kind == "missing root" else real_root
    work = tmp_path / "work"
    work.mkdir()
    args = ["--budget", "small", "--data-root", str(data_root), "--work-dir", str(work), *flags]
    refused(kind, script, *args, work=work, names=(str(named.relative_to(real_root)),), within_s=120)


def test_print_the_table_of_cases():
    """Last: the table of what each case printed (``-s`` shows it)."""
    rows = [f"| {k} | `{c}` | `{line}` | {s:.1f} |" for k, c, line, s in CASES_RUN]
    print("\n| class | command | line printed | s |\n|---|---|---|---|\n" + "\n".join(rows))
