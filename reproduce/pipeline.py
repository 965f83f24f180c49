"""What every table script shares: pretrain (or reuse) each method's encoders under one budget, run
protocols on them, and write one record per run.

Pretraining runs in this process through ``reproduce.pretrain.main`` with ``--reuse --resume``. A finished run
with the same run key (config, training code and dataset) is reused, an interrupted one resumes, and a stale
one is never reused (its key differs, so it lives in another folder).
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from mmengine.config import Config
from mmengine.logging import MMLogger

from methods.backbone import ENCODER_ARCH_KEYS, build_vit, export_encoder
from reproduce import pretrain
from reproduce.provenance import provenance
from tables.records import Record, read_record, write_record
from tables.specs import BASELINE

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Encoder:
    """A pretrained (or external) encoder the protocols evaluate."""

    method: str  # method or variant name; external checkpoints are 'ext:<name>'
    pretrain_seed: int
    path: Path
    record: Path | None = None  # the pretraining record (None for external checkpoints)


@dataclass
class Stage:
    name: str
    run: Callable[[], Any]
    weight: float = 1.0  # relative expected duration, for the ETA


@dataclass
class Progress:
    """One line per stage with elapsed time and an ETA from the weights of the stages still to run."""

    stages: list[Stage]
    start: float = field(default_factory=time.perf_counter)
    done_weight: float = 0.0

    def run(self) -> list[Any]:
        total = sum(s.weight for s in self.stages) or 1.0
        results = []
        for i, stage in enumerate(self.stages, 1):
            elapsed = time.perf_counter() - self.start
            eta = (
                elapsed / self.done_weight * (total - self.done_weight) if self.done_weight else float("nan")
            )
            eta_text = "estimating" if eta != eta else f"~{eta / 60:.1f} min left"
            print(
                f"[{i}/{len(self.stages)}] {stage.name}  ({elapsed / 60:.1f} min elapsed, {eta_text})",
                flush=True,
            )
            results.append(stage.run())
            self.done_weight += stage.weight
        print(
            f"done: {len(self.stages)} stages in {(time.perf_counter() - self.start) / 60:.1f} min",
            flush=True,
        )
        return results


def quiet_mmengine() -> None:
    """mmengine logs one line per parameter group and per hook; a table run shows its own progress lines."""
    MMLogger.get_instance("mmengine", log_level="WARNING")
    logging.getLogger("mmengine").setLevel(logging.WARNING)


def pretrain_encoder(
    method: str, budget: str, seed: int, work_dir: Path, data_root: str | None, extra_args: Iterable[str] = ()
) -> Encoder:
    """Pretrain (or reuse / resume) one method for one seed; returns its encoder."""
    args = [
        "--method",
        method,
        "--budget",
        budget,
        "--seed",
        str(seed),
        "--work-root",
        str(work_dir),
        "--reuse",
        "--resume",
        *extra_args,
    ]
    if data_root:
        args += ["--data-root", data_root]
    summary = pretrain.main(args)
    return Encoder(method, seed, Path(summary["encoder"]), Path(summary["record"]))


def random_init_encoder(cfg: Config, seed: int, work_dir: Path) -> Encoder:
    """The budget's encoder at MAE's initialisation (seeded), never pretrained: the baseline row.

    Every pretraining seed gets its own initialisation, so the baseline's spread is comparable with the
    methods'. The file is rewritten on each call; the same seed gives the same tensors.
    """
    path = work_dir / "baselines" / cfg.budget / BASELINE / f"seed{seed}" / "encoder.pth"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        # the budget's architecture as pretraining builds it: the named arch and the model section's keys
        vit = build_vit(cfg.model.arch, **{k: v for k, v in cfg.model.items() if k in ENCODER_ARCH_KEYS})
    export_encoder(vit, path, {"method": BASELINE, "budget": cfg.budget, "init_seed": seed})
    return Encoder(BASELINE, seed, path)


def external_encoders(specs: Iterable[str]) -> list[Encoder]:
    """``NAME=PATH`` pairs from ``--checkpoint`` (converted official checkpoints, any encoder file)."""
    encoders = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"--checkpoint expects NAME=PATH, got {spec!r}")
        if not Path(path).is_file():
            raise SystemExit(f"--checkpoint {name}: {path} is not a file")
        encoders.append(Encoder(f"ext:{name}", 0, Path(path)))
    return encoders


#: (protocol name for --skip, stage label, weight for the ETA) of the ImageNet-1K protocols, in run order
IN1K_PROTOCOLS = (("linear_probe", "linear probe", 0.5), ("finetune", "fine-tune", 2.0), ("knn", "k-NN", 0.3))


def in1k_stages(
    tag: str,
    encoder: Callable[[], Encoder],
    *,
    cfg: Config,
    imagenet_root: Path,
    manifest_hash: str,
    work_dir: Path,
    probe_seeds: Iterable[int],
    ft_seeds: Iterable[int],
    skip: set[str] = frozenset(),
) -> list[Stage]:
    """The ImageNet-1K protocol stages (linear probe per seed, fine-tune per seed, k-NN) of one encoder;
    ``encoder()`` resolves it when a stage runs, after its pretraining stage."""
    from downstream.in1k import run_finetune, run_knn, run_linear_probe

    def run(protocol_fn, seed):
        def go():
            enc = encoder()
            out = work_dir / "eval" / cfg.budget / enc.method / f"pretrain{enc.pretrain_seed}"
            result = protocol_fn(enc.path, cfg, imagenet_root, out, seed=seed, progress=False)
            return protocol_record(
                result, cfg=cfg, encoder=enc, manifest_hash=manifest_hash, work_dir=work_dir
            )

        return go

    seeds = {"linear_probe": list(probe_seeds), "finetune": list(ft_seeds), "knn": [0]}
    fns = {"linear_probe": run_linear_probe, "finetune": run_finetune, "knn": run_knn}
    stages = []
    for protocol, label, weight in IN1K_PROTOCOLS:
        if protocol in skip:
            continue
        for seed in seeds[protocol]:
            name = f"{tag}: {label}" + ("" if protocol == "knn" else f", seed {seed}")
            stages.append(Stage(name, run(fns[protocol], seed), weight))
    return stages


def in1k_evaluator(
    cfg: Config,
    data: Any,
    work_dir: Path,
    probe_seeds: Iterable[int],
    ft_seeds: Iterable[int],
    skip: set[str] = frozenset(),
) -> Callable[[str, Callable[[], Encoder]], list[Stage]]:
    """``evaluate(tag, encoder)`` for ``pretrained_stages``: the ImageNet-1K protocol stages on ``data``
    (a ``reproduce.data_root.DataRoot``)."""

    def evaluate(tag: str, encoder: Callable[[], Encoder]) -> list[Stage]:
        return in1k_stages(
            tag,
            encoder,
            cfg=cfg,
            imagenet_root=data.imagenet,
            manifest_hash=data.manifest_hash,
            work_dir=work_dir,
            probe_seeds=probe_seeds,
            ft_seeds=ft_seeds,
            skip=skip,
        )

    return evaluate


def pretrained_stages(
    names: Iterable[str],
    seeds: Iterable[int],
    *,
    budget: str,
    work_dir: Path,
    data_root: str | None,
    extra_args: Iterable[str],
    evaluate: Callable[[str, Callable[[], Encoder]], list[Stage]],
) -> list[Stage]:
    """Per method and pretraining seed: a pretraining stage (or reuse), then ``evaluate(tag, encoder)``'s."""
    stages: list[Stage] = []
    for name in names:
        for seed in seeds:
            encoders: dict[str, Encoder] = {}

            def pretrain_stage(name=name, seed=seed, encoders=encoders):
                encoders["it"] = pretrain_encoder(name, budget, seed, work_dir, data_root, extra_args)

            stages.append(Stage(f"{name}: pretrain, seed {seed}", pretrain_stage, 4.0))
            stages += evaluate(f"{name} (pretrain seed {seed})", lambda encoders=encoders: encoders["it"])
    return stages


def protocol_record(
    result: dict[str, Any], *, cfg: Config, encoder: Encoder, manifest_hash: str, work_dir: Path
) -> Path:
    """Write the record of one protocol run (a ``downstream`` result dict) on one encoder."""
    inputs = result["provenance_inputs"]
    pre = read_record(encoder.record) if encoder.record else None
    prov = provenance(
        config={"protocol": result["protocol"], "recipe": inputs["config"]},
        dataset_manifest_hash=manifest_hash,
        world_size=inputs["world_size"],
        batch_size=inputs["batch_size"],
        precision=inputs["precision"],
        seed=inputs["seed"],
        device=inputs.get("device"),
        encoder_sha256=result["load_report"]["sha256"],
        encoder_run_key=pre.extra.get("run_key") if pre else None,
    )
    extra = {
        "recipe": result["recipe"]["name"],
        "recipe_values": result["recipe"],
        "load_report": result["load_report"],
        "data": result.get("data"),
        "final_epoch": result.get("final_epoch"),
        "encoder": str(encoder.path),
    }
    if result.get("protocol_detail"):  # shown in the table's notes (e.g. DAVIS's window, top-k, context)
        extra["protocol_detail"] = result["protocol_detail"]
    if result.get("results_dir"):  # where a protocol left its predictions (DAVIS's PNGs)
        extra["results_dir"] = result["results_dir"]
    record = Record(
        budget=cfg.budget,
        method=encoder.method,
        protocol=result["protocol"],
        seed=result["seed"],
        pretrain_seed=encoder.pretrain_seed,
        metrics=result["metrics"],
        provenance=prov,
        cost={"wall_s": result["timings"]["total_s"]},
        extra=extra,
    )
    return write_record(record, work_dir)


# ----------------------------------------------------------------------------------------------------------
# What the per-encoder table scripts (Tables 1-4) share: flags, method selection, the stages of every row
# ----------------------------------------------------------------------------------------------------------
def add_table_args(p: argparse.ArgumentParser, seeds_help: str) -> None:
    """The flags every per-encoder table script takes (``--budget``, ``--methods``, ``--seeds``,
    ``--checkpoint``, ``--data-root``, ``--work-dir``, ``--equalize``, ``--out-dir``, ``--no-results-md``,
    ``--no-baseline``)."""
    p.add_argument("--budget", default="tiny", help="budget name (reproduce/budgets/); default: tiny")
    p.add_argument(
        "--methods",
        default=None,
        help="comma-separated methods/variants; 'all': every method and variant (default: every method, "
        "no variants)",
    )
    p.add_argument("--seeds", type=int, default=None, help=seeds_help)
    p.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="add a row for an external encoder file (e.g. a converted official checkpoint)",
    )
    p.add_argument("--data-root", default=None, help="dataset root for real-data budgets (README.md)")
    p.add_argument("--work-dir", default=str(ROOT / "work_dirs"), help="runs and records go here")
    p.add_argument(
        "--equalize",
        choices=["epochs", "flops"],
        default=None,
        help="equal epochs (the papers' convention) or equal training FLOPs per method",
    )
    p.add_argument("--out-dir", default=str(ROOT / "tables" / "out"), help="rendered tables go here")
    p.add_argument("--no-results-md", action="store_true", help="do not rewrite RESULTS.md")
    p.add_argument(
        "--no-baseline",
        action="store_true",
        help="leave out the random-init row (the budget's ViT evaluated without pretraining)",
    )


def selected_methods(arg: str | None) -> list[str]:
    """``--methods`` as a list. Default: every discovered method with its default config (one row per method
    folder); ``all``: every method and variant (ColorMAE's other colours, CMT-MAE's teacher-only variant,
    ...). An unknown name stops the run."""
    import methods

    known = methods.list_methods()
    if arg == "all":
        return known
    names = arg.split(",") if arg else methods.list_methods(variants=False)
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise SystemExit(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return names


def table_stages(
    evaluate: Callable[[str, Callable[[], Encoder]], list[Stage]],
    names: Iterable[str],
    pretrain_seeds: Iterable[int],
    *,
    anchor_seeds: Iterable[int] | None = None,
    cfg: Config,
    work_dir: Path,
    data_root: str | None,
    baseline: bool = True,
    checkpoints: Iterable[str] = (),
) -> list[Stage]:
    """Every row's stages: each method's pretraining (or reuse) per seed followed by ``evaluate``'s stages,
    the random-init rows (one initialisation per seed), then the external encoders. ``ANCHORS`` and
    random-init take ``anchor_seeds`` (default: ``pretrain_seeds``)."""
    pretrain_seeds = list(pretrain_seeds)
    anchor_seeds = pretrain_seeds if anchor_seeds is None else list(anchor_seeds)
    extra_args = ["--cfg-options", f"pretrain.equalize={cfg.pretrain.equalize}"]
    stages = []
    for name in names:
        stages += pretrained_stages(
            [name],
            anchor_seeds if name in ANCHORS else pretrain_seeds,
            budget=cfg.budget,
            work_dir=work_dir,
            data_root=data_root,
            extra_args=extra_args,
            evaluate=evaluate,
        )
    if baseline:
        for seed in anchor_seeds:
            init = lambda seed=seed: random_init_encoder(cfg, seed, work_dir)
            stages += evaluate(f"{BASELINE} (init seed {seed})", init)
    for ext in external_encoders(checkpoints):
        stages += evaluate(ext.method, lambda ext=ext: ext)
    return stages


def protocol_evaluator(
    label: str,
    run: Callable[[Encoder], dict[str, Any]],
    *,
    cfg: Config,
    manifest_hash: str,
    work_dir: Path,
    weight: float = 0.5,
) -> Callable[[str, Callable[[], Encoder]], list[Stage]]:
    """``evaluate(tag, encoder)`` for a protocol that runs once per encoder: one stage that calls
    ``run(encoder)`` (a ``downstream`` result dict) and writes its record."""

    def evaluate(tag: str, encoder: Callable[[], Encoder]) -> list[Stage]:
        def go():
            enc = encoder()
            return protocol_record(
                run(enc), cfg=cfg, encoder=enc, manifest_hash=manifest_hash, work_dir=work_dir
            )

        return [Stage(f"{tag}: {label}", go, weight)]

    return evaluate


def eval_dir(work_dir: Path, cfg: Config, enc: Encoder, protocol: str) -> Path:
    """Where a protocol writes its run on one encoder: ``work_dir/eval/<budget>/<method>/pretrain<seed>``."""
    return work_dir / "eval" / cfg.budget / enc.method / f"pretrain{enc.pretrain_seed}" / protocol


@dataclass
class TableRun:
    """What a per-encoder table script resolved from its flags before any stage runs."""

    args: argparse.Namespace
    cfg: Config
    work_dir: Path
    data: Any  # reproduce.data_root.DataRoot
    names: list[str]
    pretrain_seeds: range
    anchor_seeds: range  # MAE's and random-init's (DEFAULT_SEEDS)

    def render(self, table: int):
        """Render table ``table`` from the records under the work dir (and its RESULTS.md section)."""
        from tables.render import render_table

        args = self.args
        results_md = None if args.no_results_md else ROOT / "RESULTS.md"
        return render_table(table, self.work_dir, self.cfg.budget, Path(args.out_dir), results_md=results_md)

    def run(self, evaluate: Callable[[str, Callable[[], Encoder]], list[Stage]]) -> None:
        """Every row's stages (pretraining or reuse, then ``evaluate``), with progress lines."""
        args = self.args
        stages = table_stages(
            evaluate,
            self.names,
            self.pretrain_seeds,
            anchor_seeds=self.anchor_seeds,
            cfg=self.cfg,
            work_dir=self.work_dir,
            data_root=args.data_root,
            baseline=not args.no_baseline,
            checkpoints=args.checkpoint,
        )
        Progress(stages).run()


#: Seeds per budget when ``--seeds`` is not given: (pretraining, linear-probe, fine-tune, anchor pretraining).
#: Pretraining is the largest source of variance. The anchor rows (``ANCHORS`` and random-init), against which
#: every gap is read, get the anchor count; the other methods the first count: on tiny, MAE and random-init
#: have 3 pretraining seeds (the signal check) and the other methods 1, which keeps `make reproduce` short.
#: ``--seeds N`` gives every row N. Tables 2-5 take the same seeds, so they reuse Table 1's checkpoints.
DEFAULT_SEEDS = {"micro": (3, 3, 1, 3), "tiny": (1, 3, 1, 3)}
#: the methods that get the anchor seed count (with random-init): the reference every gap is measured against
ANCHORS = ("mae",)


def prepare_table(args: argparse.Namespace, check: Callable[[Config, Any], Any] | None = None) -> TableRun:
    """Load the budget (with ``--equalize``), prepare the dataset, and run ``check(cfg, data_root)``: a bad
    recipe or dataset stops the run now, in one line, not after hours of pretraining."""
    from downstream.datasets.errors import DatasetError
    from reproduce import data_root
    from reproduce.budget import load_budget

    quiet_mmengine()
    cfg = load_budget(args.budget)
    if args.equalize:
        cfg.pretrain.equalize = args.equalize
    data = data_root.prepare(cfg, args.data_root)
    if check is not None:
        try:
            check(cfg, data)
        except (ValueError, DatasetError) as e:
            raise SystemExit(f"error: {e}") from None
    pre, _, _, anchor = DEFAULT_SEEDS.get(cfg.budget, (1, 1, 1, 1))
    if args.seeds is not None:
        pre = anchor = args.seeds
    names = selected_methods(args.methods)
    return TableRun(args, cfg, Path(args.work_dir), data, names, range(pre), range(anchor))
