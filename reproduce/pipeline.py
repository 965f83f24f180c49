"""What every table script shares: a flat list of jobs (row x seed x protocol) that this module runs,
reuses or reports.

A table is a plan: for every row (a method and pretraining seed, the random-init baseline per seed, or an
external encoder file) one job obtains the encoder, then one job per protocol and evaluation seed runs on it
and writes a record. Pretraining is a typed call (``reproduce.pretrain.pretrain``) with the table's resolved
budget and prepared dataset; it reuses a finished run with the same run key (config, training code and
dataset), resumes an interrupted one, and never reuses a stale one (its key differs, so it lives in another
folder). ``--plan`` prints the jobs and exits.

What a run writes stays under its work dir (records, runs, logs, and the rendered tables in
``<work-dir>/tables/<budget>/``); RESULTS.md, the one file outside it, is updated only by the default run
(``results_md_choice``) or on request (``--results-md``). The console shows one line per job, warnings once,
then the table and the files written; ``--verbose`` shows mmengine's logs too.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from mmengine.config import Config

from downstream.mm_run import quiet_console, quiet_mmengine
from downstream.result import ProtocolInputs
from methods.backbone import ENCODER_ARCH_KEYS, build_vit
from methods.cli import UserInputError, one_line
from methods.encoder_file import export_encoder
from reproduce import pretrain
from reproduce.provenance import provenance
from tables.records import Record, read_record, write_record
from tables.specs import BASELINE

ROOT = Path(__file__).resolve().parents[1]
RESULTS_MD = ROOT / "RESULTS.md"


@dataclass(frozen=True)
class Encoder:
    """A pretrained (or external) encoder the protocols evaluate."""

    method: str  # method or variant name; external checkpoints are 'ext:<name>'
    pretrain_seed: int
    path: Path
    record: Path | None = None  # the pretraining record (None for external checkpoints)


@dataclass(frozen=True)
class Row:
    """Where one row's encoder comes from, for one seed: a pretraining run, MAE's initialisation
    (``random-init``), or a file given with ``--checkpoint``."""

    method: str
    seed: int = 0
    kind: str = "pretrain"  # 'pretrain', 'random-init' or 'file'
    path: Path | None = None  # the encoder file of kind 'file'

    @property
    def label(self) -> str:
        if self.kind == "file":
            return self.method
        return f"{self.method} ({'init' if self.kind == BASELINE else 'pretrain'} seed {self.seed})"


@dataclass(frozen=True)
class Protocol:
    """A protocol a table runs on every row: ``run(encoder, seed)`` returns a ``downstream`` result dict."""

    name: str
    label: str
    run: Callable[[Encoder, int], dict[str, Any]]
    seeds: tuple[int, ...] = (0,)
    weight: float = 0.5  # relative expected duration, for the ETA


@dataclass(frozen=True)
class Job:
    """One line of a table's plan: obtain a row's encoder (``protocol`` None) or run a protocol on it."""

    row: Row
    protocol: Protocol | None = None
    seed: int = 0

    @property
    def label(self) -> str:
        if self.protocol is None:
            verb = {"pretrain": "pretrain", BASELINE: "initialise", "file": "read"}[self.row.kind]
            return f"{self.row.label}: {verb}"
        several = len(self.protocol.seeds) > 1 or self.seed != 0
        return f"{self.row.label}: {self.protocol.label}" + (f", seed {self.seed}" if several else "")

    @property
    def weight(self) -> float:
        if self.protocol is None:
            return PRETRAIN_WEIGHT if self.row.kind == "pretrain" else 0.0
        return self.protocol.weight


#: a pretraining job's expected duration relative to the protocols' weights
PRETRAIN_WEIGHT = 4.0

#: Minutes a job takes on the 2-core CPU machine, per budget: ``pretrain`` (MAE) and ``pretrain:<method>``
#: (a variant ``m-x`` takes ``m``'s; CMT-MAE's CLIP teacher, trained once, 3.8 min at tiny, is not counted),
#: and each protocol.
#: tiny: `make reproduce` on a clean clone (2026-12-06: pretraining MAE 1.8 min, RC-MAE 2.4, HPM 3.3, ColorMAE
#: 1.9, CMT-MAE 4.4, CLIP teacher 3.8; fine-tune 1.1; 30 probes in 1.8), an ADE20K run of 3000 iterations
#: ~4.5 min (1500 iterations: 2.0-2.5 alone on 2 threads), Table 3 ~40 min over 10 encoders, DAVIS ~10 s a
#: run; micro: a micro Table 1 of MAE (36 jobs in 5.1 min). Budgets not listed fall back on ``Job.weight``
#: (relative only). reproduce/all.py prints their sum before it starts.
EXPECTED_MINUTES: dict[str, dict[str, float]] = {
    "tiny": {
        "pretrain": 1.8,
        "pretrain:rcmae": 2.4,
        "pretrain:hpm": 3.3,
        "pretrain:colormae": 1.9,
        "pretrain:cmtmae": 4.4,
        "linear_probe": 0.06,
        "finetune": 1.1,
        "knn": 0.05,
        "ade20k": 4.5,
        "coco": 4.0,
        "davis": 0.2,
    },
    "micro": {
        "pretrain": 0.75,
        "pretrain:rcmae": 1.0,
        "pretrain:hpm": 1.4,
        "pretrain:colormae": 0.8,
        "pretrain:cmtmae": 1.8,
        "linear_probe": 0.05,
        "finetune": 0.25,
        "knn": 0.05,
        "ade20k": 1.0,
        "coco": 1.0,
        "davis": 0.1,
    },
}


def expected_minutes(budget: str, job: Job) -> float:
    """``job``'s minutes from ``EXPECTED_MINUTES`` (0 for an encoder that is not pretrained), or its weight
    for a budget without them."""
    table = EXPECTED_MINUTES.get(budget)
    if table is None:
        return job.weight
    if job.protocol is not None:
        return table.get(job.protocol.name, job.protocol.weight)
    if job.row.kind != "pretrain":
        return 0.0
    method = job.row.method
    return table.get(f"pretrain:{method}", table.get(f"pretrain:{method.split('-')[0]}", table["pretrain"]))


def plan(rows: Iterable[Row], protocols: Sequence[Protocol]) -> list[Job]:
    """Every row's encoder job followed by its protocol jobs, in order."""
    jobs = []
    for row in rows:
        jobs.append(Job(row))
        jobs += [Job(row, protocol, seed) for protocol in protocols for seed in protocol.seeds]
    return jobs


def table_rows(
    names: Iterable[str],
    pretrain_seeds: Iterable[int],
    anchor_seeds: Iterable[int],
    *,
    baseline: bool = True,
    checkpoints: Iterable[str] = (),
) -> list[Row]:
    """Each method per pretraining seed (``ANCHORS`` per anchor seed), the random-init rows (one
    initialisation per anchor seed), then the external encoders."""
    pretrain_seeds, anchor_seeds = list(pretrain_seeds), list(anchor_seeds)
    rows = [
        Row(name, seed) for name in names for seed in (anchor_seeds if name in ANCHORS else pretrain_seeds)
    ]
    if baseline:
        rows += [Row(BASELINE, seed, BASELINE) for seed in anchor_seeds]
    return rows + [Row(e.method, 0, "file", e.path) for e in external_encoders(checkpoints)]


@dataclass
class Progress:
    """One progress display over every job of a run (one table, or every table: reproduce/all.py): a line per
    job with its place, the elapsed time and an ETA from the expected minutes of the jobs still to run."""

    total: int
    minutes: float  # expected minutes of all the jobs (``expected_minutes``)
    start: float = field(default_factory=time.perf_counter)
    index: int = 0
    done: float = 0.0  # expected minutes of the jobs finished

    def line(self, job: Job) -> str:
        self.index += 1
        elapsed = time.perf_counter() - self.start
        eta = (
            f"~{elapsed / self.done * (self.minutes - self.done) / 60:.1f} min left"
            if self.done
            else "estimating"
        )
        return f"[{self.index}/{self.total}] {job.label}  ({elapsed / 60:.1f} min elapsed, {eta})"

    @classmethod
    def of(cls, budget: str, jobs: Sequence[Job]) -> Progress:
        """A display over ``jobs``, its ETA from their ``expected_minutes`` on ``budget``."""
        return cls(len(jobs), sum(expected_minutes(budget, j) for j in jobs))

    def summary(self) -> str:
        return f"done: {self.index} jobs in {(time.perf_counter() - self.start) / 60:.1f} min"


@dataclass
class Pipeline:
    """Runs plans on one budget, dataset and work dir. Encoders and finished protocol jobs are kept across
    calls, so several tables run through one pipeline share every encoder and never repeat a job (Table 5's
    MAE row after Table 1's). ``progress`` (None: one per ``run`` call) spans the calls when set."""

    cfg: Config
    data: Any  # reproduce.data_root.DataRoot
    work_dir: Path
    progress: Progress | None = None
    encoders: dict[Row, Encoder] = field(default_factory=dict)
    finished: set[tuple[Row, str, int]] = field(default_factory=set)

    def pending(self, jobs: Sequence[Job]) -> list[Job]:
        """The jobs this pipeline has not done yet (an encoder not obtained, a protocol run not run)."""
        return [
            j
            for j in jobs
            if (
                j.row not in self.encoders
                if j.protocol is None
                else (j.row, j.protocol.name, j.seed) not in self.finished
            )
        ]

    def run(self, jobs: Sequence[Job]) -> list[Path]:
        """Runs the jobs not done yet, in order; returns the records the protocol jobs wrote."""
        jobs = self.pending(jobs)
        progress = self.progress or Progress.of(self.cfg.budget, jobs)
        records: list[Path] = []
        # on a terminal a row's jobs share one line, rewritten in place, so a table of many seeds stays a
        # screenful; in a log file (CI, nohup) every job keeps its line
        live = sys.stdout.isatty()
        for i, job in enumerate(jobs, 1):
            line = progress.line(job)
            row_ends = i == len(jobs) or jobs[i].row != job.row
            print(f"\r\x1b[K{line}" if live else line, end="" if live and not row_ends else "\n", flush=True)
            if job.protocol is None:
                self.encoders[job.row] = self.encoder(job.row)
            else:
                encoder = self.encoders[job.row]
                result = job.protocol.run(encoder, job.seed)
                records.append(
                    protocol_record(
                        result,
                        cfg=self.cfg,
                        encoder=encoder,
                        manifest_hash=self.data.manifest_hash,
                        work_dir=self.work_dir,
                    )
                )
                self.finished.add((job.row, job.protocol.name, job.seed))
            progress.done += expected_minutes(self.cfg.budget, job)
        if self.progress is None:
            print(progress.summary(), flush=True)
        return records

    def encoder(self, row: Row) -> Encoder:
        if row.kind == "pretrain":
            return pretrain_encoder(
                row.method, row.seed, cfg=self.cfg, data=self.data, work_dir=self.work_dir
            )
        if row.kind == BASELINE:
            return random_init_encoder(self.cfg, row.seed, self.work_dir)
        return Encoder(row.method, row.seed, row.path)


def run_or_print(jobs: Sequence[Job], pipeline: Pipeline, only_print: bool = False) -> bool:
    """Run the jobs, or (``--plan``) print them; returns whether they ran."""
    if only_print:
        print(f"{len(jobs)} jobs on budget {pipeline.cfg.budget}:")
        print("\n".join(f"  {job.label}" for job in jobs))
        return False
    pipeline.run(jobs)
    return True


def pretrain_encoder(method: str, seed: int, *, cfg: Config, data: Any, work_dir: Path) -> Encoder:
    """Pretrain (or reuse / resume) one method for one seed under the table's budget; returns its encoder."""
    result = pretrain.pretrain(cfg, method, seed=seed, data=data, work_root=work_dir, reuse=True, resume=True)
    return Encoder(method, seed, result.encoder, result.record)


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


def external_encoders(specs: Iterable[str], load: bool = False) -> list[Encoder]:
    """``NAME=PATH`` pairs from ``--checkpoint`` (converted official checkpoints, any encoder file). With
    ``load``, each file is also loaded strictly into the ViT its metadata names, as the protocols will."""
    from downstream.in1k.models import load_frozen_encoder

    encoders = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise UserInputError(f"--checkpoint expects NAME=PATH, got {spec!r}")
        if not Path(path).is_file():
            raise UserInputError(f"--checkpoint {name}: {path} is not a file")
        if load:
            try:
                load_frozen_encoder(path)
            except (ValueError, KeyError, RuntimeError) as e:  # a strict-load refusal or an unreadable file
                raise UserInputError(f"--checkpoint {name}: {path}: {one_line(e)}") from e
        encoders.append(Encoder(f"ext:{name}", 0, Path(path)))
    return encoders


def in1k_protocols(
    cfg: Config,
    data: Any,
    work_dir: Path,
    probe_seeds: Iterable[int],
    ft_seeds: Iterable[int],
    skip: set[str] = frozenset(),
) -> list[Protocol]:
    """The ImageNet-1K protocols on ``data`` (a ``reproduce.data_root.DataRoot``), in run order: the linear
    probe per seed, the fine-tune per seed, the k-NN once; ``skip`` names protocols to leave out."""
    from downstream.in1k import run_finetune, run_knn, run_linear_probe

    def on(fn: Callable[..., dict[str, Any]]) -> Callable[[Encoder, int], dict[str, Any]]:
        def run(enc: Encoder, seed: int) -> dict[str, Any]:
            out = work_dir / "eval" / cfg.budget / enc.method / f"pretrain{enc.pretrain_seed}"
            return fn(ProtocolInputs(enc.path, cfg, data.imagenet, out, seed=seed, progress=False))

        return run

    protocols = [
        Protocol("linear_probe", "linear probe", on(run_linear_probe), tuple(probe_seeds), 0.5),
        Protocol("finetune", "fine-tune", on(run_finetune), tuple(ft_seeds), 2.0),
        Protocol("knn", "k-NN", on(run_knn), (0,), 0.3),
    ]
    return [p for p in protocols if p.name not in skip]


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
#: ``--seeds`` of Tables 2-4: Table 1's seeds by default, so its checkpoints are reused
REUSED_SEEDS_HELP = "pretraining seeds per method (default: Table 1's, so its checkpoints are reused)"


#: the budget of the run RESULTS.md shows (with every other flag at its default, ``NEUTRAL_FLAGS`` aside)
DEFAULT_BUDGET = "tiny"
#: flags (argparse dests) that change where a run writes or what it prints, not the rows, seeds and cells of
#: its table: any other flag set to something other than its default makes a run RESULTS.md does not show
NEUTRAL_FLAGS = frozenset(
    {"help", "work_dir", "data_root", "out_dir", "results_md", "plan", "verbose", "sequence", "list"}
)


class TableParser(argparse.ArgumentParser):
    """The parser of a table script. The namespace it returns also holds the command it parsed
    (``command``: ``python <script> <args>``) and the flags given a value other than their default that
    change the table (``changed``, e.g. ``['--budget micro', '--methods mae']``): what decides whether the
    run updates RESULTS.md (``results_md_for``)."""

    def __init__(self, *args: Any, script: str | Path, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)
        self.path = Path(script).resolve()
        self.script = str(self.path.relative_to(ROOT)) if self.path.is_relative_to(ROOT) else str(self.path)

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> argparse.Namespace:
        argv = list(sys.argv[1:] if args is None else args)
        ns = super().parse_args(argv, namespace)
        # the script as it was typed on the command line, else its path in the repository
        typed = args is None and Path(sys.argv[0]).resolve() == self.path
        ns.command = ("python", sys.argv[0] if typed else self.script, *argv)
        ns.changed = changed_flags(self, ns)
        return ns


def changed_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """The flags of ``args`` that differ from ``parser``'s defaults and change the table (not in
    ``NEUTRAL_FLAGS``), as they would be typed: ``--methods mae``, ``--no-baseline``."""
    changed = []
    for action in parser._actions:
        if not action.option_strings or action.dest in NEUTRAL_FLAGS:
            continue
        value = getattr(args, action.dest, action.default)
        if value == action.default:
            continue
        flag = action.option_strings[-1]
        if action.nargs == 0:  # store_true / store_const
            changed.append(flag)
        elif isinstance(value, list):  # append (--checkpoint)
            changed += [f"{flag} {v}" for v in value]
        else:
            changed.append(f"{flag} {value}")
    return changed


@dataclass(frozen=True)
class ResultsMd:
    """Whether a table run updates RESULTS.md: ``path`` (None: it does not) and, when not, the line it
    prints (``note``: why, and the exact command that would)."""

    path: Path | None
    note: str = ""


def results_md_choice(
    changed: Sequence[str],
    requested: bool | None = None,
    command: Sequence[str] = (),
    path: Path = RESULTS_MD,
) -> ResultsMd:
    """The rule, in one place: a table script updates its section of RESULTS.md when it ran the default
    run (budget ``tiny``, the default methods and seeds, no ``--checkpoint``: ``changed`` is empty), or when
    asked (``requested`` True: ``--results-md``); ``--no-results-md`` (``requested`` False) refuses it even
    then. Otherwise RESULTS.md is left unchanged and the note says so, with ``command`` (what was run, as
    ``python <script> <args>``) as it would update it."""
    if requested or (requested is None and not changed):
        return ResultsMd(path)
    again = [a for a in command if a != "--no-results-md"]
    if requested is False:
        why = "--no-results-md"
    else:
        why = f"it shows the default run (budget {DEFAULT_BUDGET}, the default methods and seeds, no "
        why += f"--checkpoint) and this run sets {' '.join(changed)}"
        again.append("--results-md")
    return ResultsMd(None, f"RESULTS.md left unchanged: {why}; to update it: {shlex.join(again)}")


def results_md_for(args: argparse.Namespace) -> ResultsMd:
    """``results_md_choice`` for the flags a ``TableParser`` parsed."""
    return results_md_choice(args.changed, args.results_md, args.command)


def table_parser(
    description: str | None, seeds_help: str = REUSED_SEEDS_HELP, *, script: str | Path
) -> TableParser:
    """The parser of a per-encoder table script (its docstring as ``description``, its ``__file__`` as
    ``script``) with the flags they all take; a script adds its own."""
    p = TableParser(description=description, script=script)
    add_table_args(p, seeds_help)
    return p


def add_run_args(
    p: argparse.ArgumentParser, plan_help: str = "print the jobs (row x seed x protocol) and exit"
) -> None:
    """The flags of every script that runs tables (the table scripts, reproduce/all.py): ``--budget``,
    ``--data-root``, ``--work-dir``, ``--plan``, and ``add_output_args``' ``--out-dir``, ``--results-md`` /
    ``--no-results-md``, ``--verbose``."""
    p.add_argument(
        "--budget",
        default=DEFAULT_BUDGET,
        help=f"budget name (reproduce/budgets/); default: {DEFAULT_BUDGET}",
    )
    p.add_argument("--data-root", default=None, help="dataset root for real-data budgets (README.md)")
    p.add_argument("--work-dir", default=str(ROOT / "work_dirs"), help="runs, records and tables go here")
    p.add_argument("--plan", action="store_true", help=plan_help)
    add_output_args(p)


def add_table_args(p: argparse.ArgumentParser, seeds_help: str) -> None:
    """The flags every per-encoder table script takes: ``add_run_args``', ``--methods``, ``--seeds``,
    ``--checkpoint``, ``--equalize`` and ``--no-baseline``."""
    add_run_args(p)
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
    p.add_argument(
        "--equalize",
        choices=["epochs", "flops"],
        default=None,
        help="equal epochs (the papers' convention) or equal training FLOPs per method",
    )
    p.add_argument(
        "--no-baseline",
        action="store_true",
        help="leave out the random-init row (the budget's ViT evaluated without pretraining)",
    )


def add_output_args(p: argparse.ArgumentParser) -> None:
    """What every table script writes and prints: ``--out-dir``, ``--results-md`` / ``--no-results-md``,
    ``--verbose``."""
    p.add_argument(
        "--out-dir",
        default=None,
        help="rendered tables (markdown, CSV, LaTeX, plots) go to DIR/<budget>/ (default: <work-dir>/tables)",
    )
    choice = p.add_mutually_exclusive_group()
    choice.add_argument(
        "--results-md",
        dest="results_md",
        action="store_const",
        const=True,
        default=None,
        help=f"update this table's section of RESULTS.md (default: only on the default run: budget "
        f"{DEFAULT_BUDGET}, the default methods and seeds, no --checkpoint)",
    )
    choice.add_argument(
        "--no-results-md",
        dest="results_md",
        action="store_const",
        const=False,
        help="leave RESULTS.md unchanged, even on the default run",
    )
    p.add_argument(
        "--verbose",
        action="store_true",
        help="show mmengine's logs on the console too (default: they stay in the log files in the work dir; "
        "the console shows one line per job, warnings once, the table and the files written)",
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
        raise UserInputError(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return names


def eval_dir(work_dir: Path, cfg: Config, enc: Encoder, protocol: str) -> Path:
    """Where a protocol writes its run on one encoder: ``work_dir/eval/<budget>/<method>/pretrain<seed>``."""
    return work_dir / "eval" / cfg.budget / enc.method / f"pretrain{enc.pretrain_seed}" / protocol


@dataclass
class TableRun:
    """What a table resolved before any job runs: the budget, its prepared dataset, the rows and seeds, and
    where records and rendered tables go. Built from a table script's flags (``prepare_table``) or by a
    caller that runs several tables on one dataset and work dir (``open_table``, e.g. reproduce/record.py)."""

    cfg: Config
    data: Any  # reproduce.data_root.DataRoot
    work_dir: Path
    names: list[str]
    seeds: int | None = None  # --seeds: every row and evaluation gets this many; None: DEFAULT_SEEDS
    baseline: bool = True
    checkpoints: tuple[str, ...] = ()
    out_dir: Path | None = None  # rendered tables: out_dir/<budget>/; None: <work_dir>/tables
    results_md: Path | None = None  # the RESULTS.md whose section ``render`` updates; None: none
    results_md_note: str = ""  # printed after the table when RESULTS.md is left unchanged (``ResultsMd``)
    plan_only: bool = False
    verbose: bool = False  # mmengine's logs on the console too (``quiet_console``)
    # a list: ``run`` adds its jobs to it and runs nothing (reproduce/all.py plans every table first)
    collect: list[Job] | None = None

    def __post_init__(self) -> None:
        self.work_dir = Path(self.work_dir)
        self.out_dir = self.work_dir / "tables" if self.out_dir is None else Path(self.out_dir)
        # one pipeline for every table run on this TableRun: encoders and finished jobs are shared
        self.pipeline = Pipeline(self.cfg, self.data, self.work_dir)

    def eval_seeds(self) -> tuple[range, range, range, range]:
        """(pretraining, linear-probe, fine-tune, anchor pretraining) seeds: ``seeds`` of each, with one
        fine-tune seed, or the budget's ``DEFAULT_SEEDS``."""
        if self.seeds is not None:
            n = self.seeds
            return range(n), range(n), range(1), range(n)
        pre, probe, ft, anchor = DEFAULT_SEEDS.get(self.cfg.budget, (1, 1, 1, 1))
        return range(pre), range(probe), range(ft), range(anchor)

    def rows(self, names: Sequence[str] | None = None, baseline: bool | None = None) -> list[Row]:
        """The rows of ``names`` (default: this run's methods) with the random-init and external rows."""
        pre, _, _, anchor = self.eval_seeds()
        return table_rows(
            self.names if names is None else names,
            pre,
            anchor,
            baseline=self.baseline if baseline is None else baseline,
            checkpoints=self.checkpoints,
        )

    def run(self, protocols: Sequence[Protocol], rows: Sequence[Row] | None = None) -> bool:
        """Run (or with ``plan_only`` print) the plan of ``rows`` (default: ``rows()``) x ``protocols``.
        Returns False when it only printed the plan (or added it to ``collect``). Unless ``verbose``,
        mmengine's logs stay in the log files of the runs (``quiet_console``)."""
        jobs = plan(self.rows() if rows is None else rows, protocols)
        if self.collect is not None:
            self.collect += jobs
            return False
        with contextlib.nullcontext() if self.verbose else quiet_console():
            return run_or_print(jobs, self.pipeline, only_print=self.plan_only)

    def render(self, table: Any):
        """Render ``table`` (a number or a ``TableSpec``) from the records under the work dir (and its
        RESULTS.md section unless ``results_md`` is None)."""
        from tables.render import render_table

        return render_table(table, self.work_dir, self.cfg.budget, self.out_dir, results_md=self.results_md)

    def show(self, rendered: Any, **more: Path) -> None:
        """Print a rendered table (its ``summary``: the provenance and the notes stay in the markdown file),
        then every file written (``more``: the script's own, e.g. a visualisation) and RESULTS.md when
        updated, where the records and the runs' logs are, and, when RESULTS.md was left unchanged, why and
        the command that would update it (``results_md_note``)."""
        print(rendered.summary)
        print("written (the markdown also holds the provenance, the seeds and the notes):")
        for kind, path in {**rendered.paths, **more}.items():
            if kind != "results":
                print(f"  {FILE_KINDS.get(kind, kind)}: {path}")
        if "results" in rendered.paths:
            print(f"  RESULTS.md ({rendered.spec.id} section): {rendered.paths['results']}")
        budget = rendered.budget
        print(f"  records: {self.work_dir / 'records' / budget}")
        print(
            f"  mmengine logs: in each run's folder under {self.work_dir / budget} (pretraining) and "
            f"{self.work_dir / 'eval' / budget} (protocols)"
        )
        if "results" not in rendered.paths and self.results_md_note:
            print(self.results_md_note)


#: how ``TableRun.show`` names the files of ``RenderedTable.paths``
FILE_KINDS = {"md": "markdown", "csv": "CSV", "tex": "LaTeX", "plot": "plot"}


#: Seeds per budget when ``--seeds`` is not given: (pretraining, linear-probe, fine-tune, anchor pretraining).
#: Pretraining is the largest source of variance. The anchor rows (``ANCHORS`` and random-init), against which
#: every gap is read, get the anchor count; the other methods the first count: on tiny, MAE and random-init
#: have 3 pretraining seeds (the signal check) and the other methods 1, which keeps `make reproduce` short.
#: ``--seeds N`` gives every row N. Tables 2-5 take the same seeds, so they reuse Table 1's checkpoints.
DEFAULT_SEEDS = {"micro": (3, 3, 1, 3), "tiny": (1, 3, 1, 3)}
#: the methods that get the anchor seed count (with random-init): the reference every gap is measured against
ANCHORS = ("mae",)

#: a table's check of its recipe and dataset: ``check(cfg, data)`` raises ValueError or DatasetError
Check = Callable[[Config, Any], Any]


def open_table(
    budget: str,
    *,
    work_dir: Path,
    data_root: str | None = None,
    equalize: str | None = None,
    methods: str | None = None,
    checks: Sequence[Check] = (),
    **options: Any,
) -> TableRun:
    """Check everything a table needs before any work, cheapest first, then prepare the dataset once: the
    budget (with ``equalize``), the method names, every ``--checkpoint`` file (loaded strictly), the dataset
    root and every ``check(cfg, data)`` (recipes, layouts). A refusal is one line, not a failure after hours
    of pretraining. ``methods`` as ``--methods``; ``options`` are ``TableRun`` fields (seeds, baseline,
    checkpoints, out_dir, results_md, verbose, ...): RESULTS.md is left alone unless ``results_md`` names
    it."""
    from reproduce import data_root as data_roots
    from reproduce.budget import load_budget

    if not options.get("verbose"):
        quiet_mmengine()
    cfg = load_budget(budget)
    if equalize:
        cfg.pretrain.equalize = equalize
    names = selected_methods(methods)
    external_encoders(options.get("checkpoints", ()), load=True)
    data = data_roots.prepare(cfg, data_root)
    for check in checks:
        check(cfg, data)
    return TableRun(cfg, data, Path(work_dir), names, **options)


def prepare_table(args: argparse.Namespace, check: Check | None = None) -> TableRun:
    """``open_table`` from the flags of ``add_table_args`` (a ``TableParser``'s namespace); whether the run
    updates RESULTS.md is ``results_md_for``'s."""
    results = results_md_for(args)
    return open_table(
        args.budget,
        work_dir=Path(args.work_dir),
        data_root=args.data_root,
        equalize=args.equalize,
        methods=args.methods,
        checks=[check] if check else [],
        seeds=args.seeds,
        baseline=not args.no_baseline,
        checkpoints=tuple(args.checkpoint),
        out_dir=Path(args.out_dir) if args.out_dir else None,
        results_md=results.path,
        results_md_note=results.note,
        plan_only=args.plan,
        verbose=args.verbose,
    )
