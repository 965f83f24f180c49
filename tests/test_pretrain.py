"""The pretraining harness end to end: outputs, bitwise resume after a crash, the NaN stop, and one process
vs. two (gloo) with the same global batch, on the golden traces' setting (tests/golden/budget.py: 32 images,
4 steps an epoch, 24 steps, a checkpoint every 2 epochs here); and the real-data budgets at a reduced size."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from methods.encoder_file import load_encoder
from reproduce import pretrain
from tables.records import read_record
from tests.golden.traces import BUDGET

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def golden(golden_setting):
    """Command-line arguments for the golden setting: budget, data root, a checkpoint every 8 steps."""

    def args(*extra: str, options: tuple[str, ...] = ()) -> list[str]:
        argv = ["--budget", str(BUDGET), "--data-root", str(golden_setting.data.root), *extra]
        return [*argv, "--cfg-options", "pretrain.checkpoint_interval_epochs=2", *options]

    return args


def run_cli(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "reproduce/pretrain.py"), *args]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if check and proc.returncode:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


def encoder_state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, golden):
    """One uninterrupted MAE run (24 steps)."""
    out = tmp_path_factory.mktemp("full")
    result = pretrain.main(golden("--method", "mae", "--work-dir", str(out / "run"), "--work-root", str(out)))
    return out, result


def test_run_writes_encoder_checkpoints_and_record(full_run):
    out, result = full_run
    record = read_record(result.record)
    assert record.protocol == "pretrain" and record.method == "mae" and record.budget == "golden"
    assert record.cost["steps"] == 24 and record.cost["flops_per_image"] > 0
    assert record.cost["flops_unit"].startswith("FLOPs")
    assert record.provenance["dataset_manifest_hash"] and record.provenance["world_size"] == 1
    assert 0 < record.extra["teacher_momentum"] < 1
    assert sorted(p.name for p in (out / "run").glob("iter_*.pth")) == ["iter_16.pth", "iter_24.pth"]
    assert not list((out / "run").glob(".*.tmp"))  # atomic writes leave no temporaries
    # The exported encoder loads strictly into the shared ViT.
    import methods

    vit = methods.build("mae", arch="micro").encoder
    report = load_encoder(result.encoder, vit)
    assert report.fraction_loaded == 1.0


def test_a_finished_run_is_reused_only_with_the_same_run_key(full_run, golden, monkeypatch):
    out, result = full_run
    args = ("--method", "mae", "--work-dir", str(out / "run"), "--work-root", str(out), "--reuse")
    monkeypatch.setattr(pretrain, "Runner", None)  # reuse must not build a Runner at all
    reused = pretrain.main(golden(*args))
    assert reused.reused and (reused.encoder, reused.record, reused.run_key) == (
        result.encoder,
        result.record,
        result.run_key,
    )
    # A changed config (another run key) is not reused: it would need training, hence the Runner.
    with pytest.raises(TypeError, match="'NoneType' object is not callable"):
        pretrain.main(golden(*args, options=("pretrain.base_lr=0.001",)))


@pytest.mark.e2e  # two more processes (~10 s of imports each)
def test_crash_after_first_checkpoint_then_resume_is_bitwise_equal(full_run, golden, tmp_path):
    _, result = full_run
    work = tmp_path / "crashed"
    common = ("--method", "mae", "--work-dir", str(work), "--work-root", str(tmp_path))
    crashed = run_cli(*golden(*common, "--exit-after-step", "8"), check=False)
    assert crashed.returncode == 3, crashed.stderr[-2000:]
    assert (work / "iter_8.pth").is_file() and not (work / "encoder.pth").exists()
    run_cli(*golden(*common, "--resume"))
    resumed, uninterrupted = encoder_state(work / "encoder.pth"), encoder_state(result.encoder)
    assert resumed.keys() == uninterrupted.keys()
    for key in resumed:
        assert torch.equal(resumed[key], uninterrupted[key]), key


def test_non_finite_loss_stops_with_step_and_last_checkpoint(golden, tmp_path, monkeypatch):
    import methods.mae.model as mae_model

    original = mae_model.MAE.loss

    def loss_with_nan_at_step_10(self, *args, **kwargs):
        losses = original(self, *args, **kwargs)
        if self.progress.step == 10:
            losses = {k: v * float("nan") if "loss" in k else v for k, v in losses.items()}
        return losses

    monkeypatch.setattr(mae_model.MAE, "loss", loss_with_nan_at_step_10)
    work = tmp_path / "nan"
    with pytest.raises(FloatingPointError, match=r"non-finite loss at step 11.*iter_8\.pth"):
        pretrain.main(golden("--method", "mae", "--work-dir", str(work), "--work-root", str(tmp_path)))
    assert sorted(p.name for p in work.glob("iter_*.pth")) == ["iter_8.pth"]
    assert not (work / "encoder.pth").exists()
    ckpt = torch.load(work / "iter_8.pth", map_location="cpu", weights_only=False)
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())


@pytest.mark.e2e  # two more processes (~10 s of imports each)
@pytest.mark.skipif(
    shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(),
    reason="torchrun not installed",
)
def test_two_processes_match_one_process_with_the_same_global_batch(golden, tmp_path):
    steps = "6"
    single = tmp_path / "single"
    run_cli(
        *golden(
            "--method", "mae", "--work-dir", str(single), "--work-root", str(tmp_path), "--max-steps", steps
        )
    )
    double = tmp_path / "double"
    torchrun = str(Path(sys.executable).parent / "torchrun")
    cmd = [
        torchrun,
        "--nproc-per-node",
        "2",
        "--master-port",
        "29517",
        str(ROOT / "reproduce/pretrain.py"),
        "--launcher",
        "pytorch",
        *golden("--method", "mae", "--work-dir", str(double), "--work-root", str(tmp_path / "r2")),
    ]
    cmd[cmd.index("--cfg-options") : cmd.index("--cfg-options")] = ["--max-steps", steps]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, two = encoder_state(single / "encoder.pth"), encoder_state(double / "encoder.pth")
    worst = max((one[k] - two[k]).abs().max().item() for k in one)
    # Only the order of floating-point sums differs (gradients are averaged across the two processes).
    assert worst < 1e-5, worst
    # ... and the comparison is not vacuous: six steps moved the weights far more than that.
    import methods

    torch.manual_seed(0)  # pretrain.py seeds the same way before building the model
    init = methods.build("mae", arch="micro").encoder.state_dict()  # the golden setting's arch
    assert max((one[k] - init[k]).abs().max().item() for k in one) > 100 * max(worst, 1e-7)


def fake_imagenet(root: Path, classes: int = 2, per_class: int = 8, size: int = 40) -> Path:
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for split in ("train", "val"):
        for c in range(classes):
            folder = root / "imagenet" / split / f"n{c:08d}"
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = torch.randint(0, 255, (size, size, 3), generator=g, dtype=torch.uint8).numpy()
                Image.fromarray(pixels).save(folder / f"img_{i}.JPEG")
    return root


@pytest.mark.e2e
@pytest.mark.parametrize("budget", ["small", "base-300e"])
def test_real_data_budgets_train_two_steps_at_reduced_size(tmp_path, budget):
    """The small and base budgets are real configs: their arch (ViT-S/16, ViT-B/16), schedule and optimizer
    run two steps on fake ImageNet-layout data, with the image size and batch reduced to fit a CPU test."""
    root = fake_imagenet(tmp_path / "data")
    result = pretrain.main(
        [
            "--method",
            "mae",
            "--budget",
            budget,
            "--data-root",
            str(root),
            "--work-dir",
            str(tmp_path / "run"),
            "--work-root",
            str(tmp_path),
            "--max-steps",
            "2",
            "--cfg-options",
            "model.img_size=32",
            "pretrain.batch_size=8",
            "pretrain.num_workers=0",
        ]
    )
    record = read_record(result.record)
    assert record.cost["steps"] == 2 and record.extra["max_steps_override"] == 2
    meta = torch.load(result.encoder, weights_only=True)["meta"]
    expected_dim = {"small": 384, "base-300e": 768}[budget]
    assert meta["arch"]["embed_dim"] == expected_dim and meta["arch"]["patch_size"] == 16


def test_real_data_budget_without_data_root_says_what_to_provide(tmp_path):
    from downstream.datasets.errors import DatasetError

    with pytest.raises(DatasetError, match=r"pass --data-root DIR"):
        pretrain.main(["--method", "mae", "--budget", "small", "--work-dir", str(tmp_path)])
