"""Every lr schedule of every protocol, with warm-up and without.

MAE's schedule (linear warm-up from 0, then half-cycle cosine to ``min_lr``, per iteration) drives
pretraining, the linear probe and the fine-tune: each is checked against numbers generated from the official
``util/lr_sched.py::adjust_learning_rate`` (``tests/fixtures/generate_lr_schedules.py``), on the golden
setting, through the protocol's real entry point. ADE20K (mmseg's linear warm-up + poly decay, as BEiT/MAE's
segmentation configs) and COCO (linear warm-up + step decay, as ViTDet) are checked against the closed forms
of mmengine's schedulers, which span ``end - begin - 1`` iterations: a warm-up reaches the full lr at its
last iteration and the poly decay reaches ``min_lr`` at the run's last iteration.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

from downstream.optim import warmup_cosine_lr
from downstream.result import ProtocolInputs
from tests.golden.traces import BUDGET, StepRecorder

CASES = json.loads((Path(__file__).parent / "fixtures" / "lr_schedules.json").read_text())["cases"]


def assert_official(case: str, lrs: list[float]) -> None:
    expected = CASES[case]["lr_per_iteration"]
    assert len(lrs) == len(expected), (
        f"{case}: {len(lrs)} iterations, the official schedule has {len(expected)}"
    )
    for i, (ours, official) in enumerate(zip(lrs, expected)):
        assert math.isclose(ours, official, rel_tol=1e-9, abs_tol=1e-15), (
            f"{case}: iteration {i}: lr {ours!r}, official adjust_learning_rate gives {official!r}"
        )


def budget_with(setting, **changes):
    """The golden budget with ``section.key=value`` changes (a deep copy)."""
    cfg = copy.deepcopy(setting.cfg)
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        cfg[section][key] = value
    return cfg


@pytest.mark.parametrize("case", list(CASES))
def test_warmup_cosine_lr_is_maes_adjust_learning_rate(case):
    c = CASES[case]
    accum, spe = c["accum_iter"], c["steps_per_epoch"]
    lrs = [
        warmup_cosine_lr((i - i % accum) / spe, c["lr"], c["min_lr"], c["warmup_epochs"], c["epochs"])
        for i in range(c["epochs"] * spe)
    ]
    assert_official(case, lrs)


@pytest.mark.parametrize(("warmup", "case"), [(1, "pretrain"), (0, "pretrain_warmup0")])
def test_pretraining_follows_maes_schedule(golden_setting, tmp_path, warmup, case):
    """The harness's lr at every step of a real run (24 steps of MAE), also with no warm-up (which trained at
    1e-8 of the lr from start to end while mmengine's LinearLR + CosineAnnealingLR chained the schedule)."""
    from reproduce import pretrain

    argv = ["--method", "mae", "--budget", str(BUDGET), "--data-root", str(golden_setting.data.root)]
    argv += ["--work-dir", str(tmp_path / "run"), "--cfg-options", f"pretrain.warmup_epochs={warmup}"]
    recorder = StepRecorder()
    result = pretrain.run(pretrain.parse_args(argv), hooks=[recorder])
    assert_official(case, [s["lr"] for s in recorder.steps])
    # a run given --work-dir (and no --work-root) keeps its record there: two pilots never share seed0.json
    assert result.record == tmp_path / "run" / "records" / "golden" / "mae" / "pretrain" / "seed0.json"


@pytest.mark.parametrize(("warmup", "case"), [(1, "linear_probe"), (0, "linear_probe_warmup0")])
def test_linear_probe_follows_maes_schedule(golden_setting, tmp_path, warmup, case):
    from downstream.in1k.linear_probe import run_linear_probe

    lrs = []
    cfg = budget_with(golden_setting, linear_probe__warmup_epochs=warmup)
    inputs = ProtocolInputs(
        golden_setting.encoder, cfg, golden_setting.data.imagenet, tmp_path, progress=False
    )
    run_linear_probe(inputs, on_step=lambda step, values, head: lrs.append(values["lr"]))
    assert_official(case, lrs)


@pytest.mark.parametrize(
    ("changes", "case"),
    [
        (dict(finetune__warmup_epochs=0.5), "finetune"),
        (dict(finetune__warmup_epochs=0), "finetune_warmup0"),
        # two micro-batches per optimizer step: the lr is set at the first and held, as MAE's engine
        (dict(finetune__warmup_epochs=0.5, finetune__accum_iter=2), "finetune_accum2"),
    ],
)
def test_finetune_follows_maes_schedule(golden_setting, tmp_path, changes, case):
    from downstream.in1k.finetune import run_finetune

    recorder = StepRecorder()  # 'lr': the largest group's, the head's (layer-decay scale 1)
    cfg = budget_with(golden_setting, **changes)
    run_finetune(
        ProtocolInputs(
            golden_setting.encoder,
            cfg,
            golden_setting.data.imagenet,
            tmp_path,
            progress=False,
            hooks=[recorder],
        )
    )
    assert_official(case, [s["lr"] for s in recorder.steps])


def dense_lrs(protocol: str, golden_setting, tmp_path, warmup: int) -> tuple[dict, list[float]]:
    """(the recipe, the lr of each iteration) of a dense protocol run with ``warmup`` warm-up iterations."""
    from downstream.ade20k.protocol import run_ade20k
    from downstream.coco.protocol import run_coco

    cfg = budget_with(golden_setting, **{f"{protocol}__warmup_iters": warmup})
    run = {"ade20k": run_ade20k, "coco": run_coco}[protocol]
    recorder = StepRecorder()
    root = getattr(golden_setting.data, protocol)
    run(ProtocolInputs(golden_setting.encoder, cfg, root, tmp_path, progress=False, hooks=[recorder]))
    return cfg[protocol], [s["lr"] for s in recorder.steps]


@pytest.mark.e2e  # a dense fine-tune through mmseg/mmdet (4-8 s a run)
@pytest.mark.parametrize("warmup", [2, 0])
def test_ade20k_schedule_is_linear_warmup_then_poly(golden_setting, tmp_path, warmup):
    r, lrs = dense_lrs("ade20k", golden_setting, tmp_path, warmup)
    lr, n, start = r["lr"], r["iters"], r["warmup_start_factor"]
    expected = []
    for t in range(n):
        if t < warmup:  # LinearLR: the factor goes from start_factor to 1 at the warm-up's last iteration
            expected.append(lr * (start + (1 - start) * t / max(warmup - 1, 1)))
        else:  # PolyLR from the end of the warm-up to min_lr at the last iteration
            progress = (t - warmup) / (n - warmup - 1)
            expected.append((lr - r["min_lr"]) * (1 - progress) ** r["poly_power"] + r["min_lr"])
    assert_closed_form("ADE20K", lrs, expected)


@pytest.mark.e2e  # a dense fine-tune through mmseg/mmdet (4-8 s a run)
@pytest.mark.parametrize("warmup", [2, 0])
def test_coco_schedule_is_linear_warmup_then_steps(golden_setting, tmp_path, warmup):
    r, lrs = dense_lrs("coco", golden_setting, tmp_path, warmup)
    lr, start = r["lr"], r["warmup_start_factor"]
    expected = []
    for t in range(r["max_iters"]):
        factor = start + (1 - start) * t / max(warmup - 1, 1) if t < warmup else 1.0
        expected.append(lr * factor * r["lr_gamma"] ** sum(t >= m for m in r["lr_steps"]))
    assert_closed_form("COCO", lrs, expected)


def assert_closed_form(what: str, lrs: list[float], expected: list[float]) -> None:
    assert len(lrs) == len(expected), f"{what}: {len(lrs)} iterations, expected {len(expected)}"
    for t, (ours, want) in enumerate(zip(lrs, expected)):
        assert math.isclose(ours, want, rel_tol=1e-6, abs_tol=1e-12), (
            f"{what} iteration {t}: lr {ours}, not {want}"
        )
