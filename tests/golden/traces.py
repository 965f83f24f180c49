"""Running a golden trace: every method, variant and ablation through the real pretraining harness, and every
protocol through its real entry point, on the fixed setting of ``tests/golden/budget.py``.

    setting = Setting(tmp_dir)          # writes the 32-image dataset and a fixed random-init encoder once
    trace = run_trace("mae", setting)   # -> Trace (steps, fingerprints, values, exact)

Each run uses one thread (``threads``) and float32; what it records is described in ``tests/golden/__init__``.
A run that raises keeps the steps it recorded and the error, so a fault that crashes late still shows where
the numbers first moved.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from mmengine.hooks import Hook

from downstream.result import ProtocolInputs

GOLDEN = Path(__file__).resolve().parent
BUDGET = GOLDEN / "budget.py"
TRACE_DIR = GOLDEN / "traces"
REPO = GOLDEN.parents[1]


@dataclass
class Trace:
    name: str
    kind: str  # 'method' or 'protocol'
    steps: list[dict[str, float]] = field(default_factory=list)  # every logged value of every step
    fingerprints: dict[str, dict[str, Any]] = field(default_factory=dict)  # tensors at the end
    values: dict[str, float] = field(default_factory=dict)  # end-of-run numbers (metrics, cost)
    exact: dict[str, Any] = field(default_factory=dict)  # compared exactly (predictions, rendered text)
    error: str | None = None  # what the run raised, if it did
    produced_by: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Trace:
        return cls(**d)


def trace_path(name: str) -> Path:
    return TRACE_DIR / f"{name}.json"


def read_trace(name: str) -> Trace:
    return Trace.from_dict(json.loads(trace_path(name).read_text()))


def produced_by(threads: int) -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        # tracked files changed since that commit: the trace came from the commit plus those changes
        commit += "+changes" if git("status", "--porcelain", "--untracked-files=no") else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {"code_commit": commit, "torch": torch.__version__, "threads": threads, "dtype": "float32"}


# ---------------------------------------------------------------------------------------------------------
# What a trace records
# ---------------------------------------------------------------------------------------------------------
def fingerprint(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """sum, sum of squares and sum of absolute values (float64) of every float tensor, and the sha256 of all
    tensors. ``abssum`` is the scale the sum is compared at (a sum near zero has no useful relative error)."""
    from methods.encoder_file import tensors_sha256

    floats = [t.detach().double().reshape(-1) for t in state.values() if t.is_floating_point()]
    flat = torch.cat(floats) if floats else torch.zeros(0, dtype=torch.float64)
    return {
        "tensors": len(state),
        "numel": int(sum(t.numel() for t in state.values())),
        "sum": float(flat.sum()),
        "sumsq": float((flat * flat).sum()),
        "abssum": float(flat.abs().sum()),
        "sha256": tensors_sha256(state),
    }


def module_fingerprints(model: torch.nn.Module, prefix: str = "model") -> dict[str, dict[str, Any]]:
    """One fingerprint per top-level network of a model (encoder, decoders, EMA and CLIP teachers, heads) over
    its parameters, and one over its float buffers (``<name>#buffers``: BatchNorm running statistics, fixed
    tables), which ``compare`` holds to the looser tolerance of derived values."""
    prints = {}
    for name, child in model.named_children():
        params = dict(child.named_parameters())
        buffers = {k: b for k, b in child.named_buffers() if b.is_floating_point()}
        if params:
            prints[f"{prefix}.{name}"] = fingerprint(params)
        if buffers:
            prints[f"{prefix}.{name}#buffers"] = fingerprint(buffers)
    return prints


#: the recorded steps a run stops at the first divergence from (``run_trace(..., stop_early=True)``)
_REFERENCE: contextvars.ContextVar[list[dict[str, float]] | None] = contextvars.ContextVar(
    "reference", default=None
)


class Diverged(Exception):
    """Raised after the first step that left the recorded trace, when the run was asked to stop early."""


def record_step(steps: list[dict[str, float]], values: dict[str, float]) -> None:
    """Append a step; stop the run if it left the reference (a mutated run need not finish to fail)."""
    steps.append(values)
    reference = _REFERENCE.get()
    if reference is not None and len(steps) <= len(reference):
        from tests.golden.compare import RTOL, relative

        recorded = reference[len(steps) - 1]
        if set(recorded) != set(values) or any(relative(recorded[k], values[k]) > RTOL for k in values):
            raise Diverged(f"stopped after step {len(steps) - 1}, the first that differs from the trace")


class StepRecorder(Hook):
    """Every value a training step logs (mmengine's log_vars: the total, each ``loss_*`` term and the other
    scalars) and the lr the step used (the largest and smallest of the parameter groups, which tells layer
    decay apart). Runs before the lr scheduler steps; keeps the trained model at the end."""

    priority = "VERY_HIGH"

    def __init__(self) -> None:
        self.steps: list[dict[str, float]] = []
        self.model: torch.nn.Module | None = None

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        values = {k: float(torch.as_tensor(v).detach().float().mean()) for k, v in (outputs or {}).items()}
        lrs = [group["lr"] for group in runner.optim_wrapper.optimizer.param_groups]
        values["lr"] = float(max(lrs))
        if min(lrs) != max(lrs):
            values["lr_min"] = float(min(lrs))
        record_step(self.steps, values)

    def after_train(self, runner) -> None:
        from downstream.mm_run import unwrap

        self.model = unwrap(runner.model)


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# ---------------------------------------------------------------------------------------------------------
# The setting: dataset and fixed encoder, written once per folder
# ---------------------------------------------------------------------------------------------------------
class Setting:
    """The golden budget, its dataset and a fixed random-init encoder under one working folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    @functools.cached_property
    def cfg(self):
        from reproduce.budget import load_budget

        return load_budget(str(BUDGET))

    @functools.cached_property
    def data(self):
        from reproduce import data_root

        return data_root.prepare(self.cfg.copy(), self.root / "scenes", workers=1)

    @functools.cached_property
    def encoder(self) -> Path:
        """The budget's ViT at MAE's initialisation, seed 0: the encoder every protocol trace evaluates."""
        from reproduce.pipeline import random_init_encoder

        return random_init_encoder(self.cfg, 0, self.root / "encoders").path

    def work_dir(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.root))


# ---------------------------------------------------------------------------------------------------------
# Method traces
# ---------------------------------------------------------------------------------------------------------
#: budget keys a configuration trace changes (``--cfg-options``)
BUDGET_CHANGES: dict[str, dict[str, Any]] = {"mae+file-reader": {"pretrain.in_memory": False}}


def method_trace(name: str, setting: Setting) -> Trace:
    """``name`` pretrained for the budget's 24 steps by ``reproduce.pretrain.run``, as its CLI would."""
    from methods.encoder_file import read_encoder
    from reproduce import pretrain
    from tables.records import read_record

    work = setting.work_dir(name)
    argv = ["--method", name, "--budget", str(BUDGET), "--data-root", str(setting.data.root)]
    argv += ["--work-root", str(setting.root / "work"), "--work-dir", str(work)]
    if name in BUDGET_CHANGES:
        argv += ["--cfg-options", *(f"{k}={v}" for k, v in BUDGET_CHANGES[name].items())]
    args = pretrain.parse_args(argv)
    recorder = StepRecorder()
    trace = Trace(name, "method", steps=recorder.steps)
    try:
        result = pretrain.run(args, hooks=[recorder])
    except Exception as e:  # a partial trace: the comparison shows where the steps first moved
        trace.error = f"{type(e).__name__}: {e}"
        return trace
    record = read_record(result.record)
    trace.fingerprints = {
        "encoder_file": fingerprint(read_encoder(result.encoder)["state_dict"]),
        **module_fingerprints(recorder.model),
    }
    trace.values = {
        "flops_per_image": float(record.cost["flops_per_image"]),
        "teacher_momentum": float(record.extra["teacher_momentum"]),
    }
    return trace


# ---------------------------------------------------------------------------------------------------------
# Protocol traces, on the fixed random-init encoder
# ---------------------------------------------------------------------------------------------------------
def linear_probe_trace(setting: Setting, name: str = "linear_probe", **changes: Any) -> Trace:
    """MAE's probe with augmented views (the frozen encoder runs every step): loss and lr per step, the
    head's fingerprint, the final top-1/top-5. ``changes``: keys of the budget's ``linear_probe`` section."""
    from downstream.in1k import linear_probe

    cfg = setting.cfg.copy()
    cfg.linear_probe = dict(cfg.linear_probe, **changes)
    trace = Trace(name, "protocol")
    heads: list[torch.nn.Module] = []

    def on_step(step: int, values: dict[str, float], head: torch.nn.Module) -> None:
        heads[:] = [head]
        record_step(trace.steps, dict(values))

    try:
        inputs = ProtocolInputs(
            setting.encoder, cfg, setting.data.imagenet, setting.work_dir(name), progress=False
        )
        result = linear_probe.run_linear_probe(inputs, on_step=on_step)
    except Exception as e:
        trace.error = f"{type(e).__name__}: {e}"
        return trace
    trace.fingerprints = {"head": fingerprint(heads[0].state_dict())}
    trace.values = {k: float(v) for k, v in result["metrics"].items()}
    return trace


def knn_trace(setting: Setting) -> Trace:
    """The k-NN's exact predictions and score fingerprint on fixed random features (k and T from the
    budget), and its top-1/top-5 on the golden images through ``run_knn``, on either pooled feature."""
    from downstream.in1k import knn
    from downstream.recipe import resolve_recipe

    r = resolve_recipe(setting.cfg, "knn", "mae")
    g = torch.Generator().manual_seed(0)
    bank, queries = torch.randn(64, 16, generator=g), torch.randn(24, 16, generator=g)
    labels = torch.randint(0, 4, (64,), generator=g)
    scores = knn.knn_classify(bank, labels, queries, 4, k=r["k"], temperature=r["temperature"])
    values = {}
    for pool in ("cls", "avg"):
        cfg = setting.cfg.copy()
        cfg.knn = dict(cfg.knn, pool=pool)
        result = knn.run_knn(ProtocolInputs(setting.encoder, cfg, setting.data.imagenet, progress=False))
        values |= {f"{k}_{pool}": float(v) for k, v in result["metrics"].items()}
    return Trace(
        "knn",
        "protocol",
        fingerprints={"scores": fingerprint({"scores": scores})},
        values=values,
        exact={"predictions": scores.argmax(dim=1).tolist()},
    )


def _runner_protocol_trace(
    name: str, run: Callable[..., dict[str, Any]], root: Path, setting: Setting
) -> Trace:
    recorder = StepRecorder()
    trace = Trace(name, "protocol", steps=recorder.steps)
    try:
        work = setting.work_dir(name)
        result = run(
            ProtocolInputs(setting.encoder, setting.cfg, root, work, progress=False, hooks=[recorder])
        )
    except Exception as e:
        trace.error = f"{type(e).__name__}: {e}"
        return trace
    trace.fingerprints = module_fingerprints(recorder.model)
    trace.values = {k: float(v) for k, v in result["metrics"].items()}
    return trace


def finetune_trace(setting: Setting) -> Trace:
    """MAE's fine-tune (layer decay, drop path, mixup/cutmix, RandAugment, erasing), 2 epochs of 4 steps."""
    from downstream.in1k.finetune import run_finetune

    return _runner_protocol_trace("finetune", run_finetune, setting.data.imagenet, setting)


def ade20k_trace(setting: Setting) -> Trace:
    """UperNet through mmseg, 6 iterations, then the slide test."""
    from downstream.ade20k.protocol import run_ade20k

    return _runner_protocol_trace("ade20k", run_ade20k, setting.data.ade20k, setting)


def coco_trace(setting: Setting) -> Trace:
    """ViTDet's Mask R-CNN through mmdet, 6 iterations, then the COCO test."""
    from downstream.coco.protocol import run_coco

    return _runner_protocol_trace("coco", run_coco, setting.data.coco, setting)


def render_trace(setting: Setting) -> Trace:
    """Tables 1 and 4 rendered from a fixed set of records: the markdown and CSV, byte for byte."""
    from tables.render import render_table

    work, out = setting.work_dir("render"), setting.root / "render-out"
    write_fixed_records(work)
    exact = {}
    for number in (1, 4):
        rt = render_table(number, work, "golden", out, results_md=None, plot=False)
        for kind in ("md", "csv"):
            exact[f"table{number}.{kind}"] = (
                Path(rt.paths[kind]).read_text().replace(str(out.resolve()), "<out>")
            )
    return Trace("render", "protocol", exact=exact)


def write_fixed_records(work: Path) -> None:
    """Pretraining and protocol records of three rows (MAE, HPM, random-init) with fixed numbers."""
    from tables.records import REQUIRED_PROVENANCE, Record, write_record

    prov = {k: "x" for k in REQUIRED_PROVENANCE} | {
        "code_commit": "c0ffee",
        "config_hash": "cfg",
        "dataset_manifest_hash": "manifest",
        "device": "CPU",
        "world_size": 1,
        "batch_size": 8,
        "seed": 0,
    }
    created = "2026-01-01T00:00:00+00:00"
    numbers = {
        "mae": ([31.25, 29.5, 30.75], [40.0, 41.5, 39.0], [22.0, 21.5, 23.25], [61.2, 60.8, 62.0]),
        "hpm": ([30.5, 31.0, 28.25], [42.5, 40.0, 41.0], [21.0, 24.5, 22.0], [59.9, 61.1, 60.4]),
        "random-init": ([18.0, 19.25, 18.5], [20.0, 21.25, 19.5], [17.0, 17.5, 18.25], [55.0, 54.2, 56.1]),
    }
    for method, (lin, ft, knn, davis) in numbers.items():
        for seed in range(3):
            if method != "random-init":
                cost = {
                    "flops_per_image": 1e8 * (1 + (method == "hpm")),
                    "images_per_s": 100.0 + seed,
                    "total_flops": 1e11,
                    "train_images": 1000,
                }
                write_record(
                    Record(
                        "golden",
                        method,
                        "pretrain",
                        seed,
                        {"final_loss": 0.5},
                        prov,
                        cost=cost,
                        created=created,
                    ),
                    work,
                )
            for protocol, metrics in (
                ("linear_probe", {"top1": lin[seed], "top5": lin[seed] + 40}),
                ("finetune", {"top1": ft[seed], "top5": ft[seed] + 40}),
                ("knn", {"top1": knn[seed], "top5": knn[seed] + 30}),
                ("davis", {"jf_mean": davis[seed], "j_mean": davis[seed] - 1, "f_mean": davis[seed] + 1}),
            ):
                write_record(
                    Record("golden", method, protocol, 0, metrics, prov, pretrain_seed=seed, created=created),
                    work,
                )


# ---------------------------------------------------------------------------------------------------------
# The catalogue
# ---------------------------------------------------------------------------------------------------------
PROTOCOL_TRACES: dict[str, Callable[[Setting], Trace]] = {
    "linear_probe": linear_probe_trace,
    # the small budgets' path: centre-crop features encoded once, the pooled patch tokens
    "linear_probe_cached_avg": functools.partial(
        linear_probe_trace, name="linear_probe_cached_avg", augment=False, pool="avg"
    ),
    "knn": knn_trace,
    "finetune": finetune_trace,
    "ade20k": ade20k_trace,
    "coco": coco_trace,
    "render": render_trace,
}


#: Method configurations no table runs, traced so that the code behind the non-default value of every
#: fidelity switch is covered too: name -> (method, overrides of the method's own keys).
CONFIG_TRACES: dict[str, tuple[str, dict[str, Any]]] = {
    # the file reader (real data) instead of the decoded in-memory array: budget keys, not method keys
    "mae+file-reader": ("mae", {}),
    "rcmae+paper-schedule": ("rcmae", dict(momentum_schedule="paper")),
    "hpm+absolute": ("hpm", dict(objective="absolute", curriculum="constant", momentum_schedule="code")),
    "colormae+batch-crop": ("colormae", dict(crop="batch")),
    "cmtmae+mse-all": ("cmtmae", dict(feature_loss="mse", loss_on="all", loss_alpha=0.25)),
    "cmtmae+topk-mask-high": ("cmtmae", dict(mask_sampling="topk", mask_direction="mask_high")),
    "cmtmae+linear-tokens-momentum": (
        "cmtmae",
        dict(alpha_schedule="linear", teacher_target="tokens", export="momentum", momentum_schedule="cosine"),
    ),
}


@contextlib.contextmanager
def registered(name: str) -> Iterator[None]:
    """A ``CONFIG_TRACES`` configuration registered as an ablation of its method while the block runs, so the
    harness builds and pretrains it by name like any declared ablation."""
    if name not in CONFIG_TRACES:
        yield
        return
    from methods import registry

    base, overrides = CONFIG_TRACES[name]
    spec = registry.get_spec(base)
    registry._check_keys(f"tests.golden CONFIG_TRACES[{name!r}]", overrides, allowed=set(spec.config))
    registry._add(registry.MethodSpec(name, spec.cls, {**spec.config, **overrides}, base, spec.folder, True))
    try:
        yield
    finally:
        registry._SPECS.pop(name, None)


def method_names() -> list[str]:
    """Every discovered method, variant and ablation, and the extra configurations (one trace each)."""
    import methods.registry

    return [*methods.registry.list_methods(ablations=True), *CONFIG_TRACES]


def trace_names() -> list[str]:
    return [*method_names(), *PROTOCOL_TRACES]


def run_trace(name: str, setting: Setting, num_threads: int = 1, stop_early: bool = False) -> Trace:
    """Run one trace. ``stop_early``: end the run at the first step that differs from the committed trace
    (the mutation suite: a fault that fails at step 0 need not train for 24 steps to show it)."""
    reference = read_trace(name).steps if stop_early and trace_path(name).is_file() else None
    token = _REFERENCE.set(reference)
    try:
        with threads(num_threads), registered(name):
            trace = PROTOCOL_TRACES[name](setting) if name in PROTOCOL_TRACES else method_trace(name, setting)
    finally:
        _REFERENCE.reset(token)
    trace.produced_by = produced_by(num_threads)
    return trace
