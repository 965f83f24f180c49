"""The mutation suite: known faults, each applied in-process, that the golden traces must catch.

A mutation replaces one function or method (``target``, ``"module:qualified.name"``) for the duration of a
``with applied(mutation):`` block: by a wrapper that changes its inputs or output, or by a patched copy of its
source (``source_edit``). Nothing is edited on disk. ``fails`` names the traces the fault must fail.

Which traces a mutation can touch is measured, not assumed: ``tracking()`` records which targets each
unmutated trace calls. A trace that never calls the target computes exactly what it did (the mutated code
never runs), so only the traces that call it are re-run under the mutation, and those outside ``fails`` must
still match their files: a fault in MAE's loss fails MAE and nothing else.

    python -m tests.golden.mutations    # run every mutation; print what caught it, at which step
"""

from __future__ import annotations
import __future__

import contextlib
import copy
import importlib
import inspect
import textwrap
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from tests.golden.compare import Comparison, compare
from tests.golden.traces import Setting, Trace, method_names, read_trace, run_trace


@dataclass(frozen=True)
class Mutation:
    name: str
    fault: str  # the fault, in words
    target: str  # "module:Qualified.name" of the function or method replaced
    replace: Callable[[Callable], Callable]  # original -> mutated
    fails: Callable[[list[str]], set[str]]  # every trace name -> the traces this fault must fail


def _owner(target: str) -> tuple[Any, str]:
    module, qualname = target.split(":")
    owner: Any = importlib.import_module(module)
    *path, attr = qualname.split(".")
    for part in path:
        owner = getattr(owner, part)
    if attr not in vars(owner):
        raise AttributeError(f"mutation target {target}: {attr!r} is not defined on {owner!r}")
    return owner, attr


@contextlib.contextmanager
def _patched(target: str, make: Callable[[Callable], Callable]) -> Iterator[None]:
    owner, attr = _owner(target)
    original = vars(owner)[attr]
    setattr(owner, attr, make(original))
    try:
        yield
    finally:
        setattr(owner, attr, original)


@contextlib.contextmanager
def applied(mutation: Mutation) -> Iterator[None]:
    with _patched(mutation.target, mutation.replace):
        yield


@contextlib.contextmanager
def tracking(targets: Iterable[str] | None = None) -> Iterator[set[str]]:
    """Within the block, record which ``targets`` (default: every mutation's) are called; the functions are
    wrapped, not changed."""
    called: set[str] = set()
    targets = sorted({m.target for m in MUTATIONS} if targets is None else set(targets))

    def counting(target: str) -> Callable[[Callable], Callable]:
        def make(original: Callable) -> Callable:
            def wrapper(*args, **kwargs):
                called.add(target)
                return original(*args, **kwargs)

            return wrapper

        return make

    with contextlib.ExitStack() as stack:
        for target in targets:
            stack.enter_context(_patched(target, counting(target)))
        yield called


def source_edit(old: str, new: str) -> Callable[[Callable], Callable]:
    """A patched copy of a function: its source with ``old`` (which must occur once) replaced by ``new``,
    compiled in the function's own module namespace."""

    def make(original: Callable) -> Callable:
        source = textwrap.dedent(inspect.getsource(original))
        if source.count(old) != 1:
            raise ValueError(
                f"{original.__qualname__}: {old!r} occurs {source.count(old)} times, expected once"
            )
        flags = __future__.annotations.compiler_flag
        code = compile(source.replace(old, new), inspect.getsourcefile(original), "exec", flags, True)
        namespace: dict[str, Any] = {}
        exec(code, original.__globals__, namespace)
        return namespace[original.__name__]

    return make


def wrap_args(change: Callable[[dict[str, Any]], None]) -> Callable[[Callable], Callable]:
    """A wrapper binding the call's arguments by name; ``change`` edits them, then the original runs."""

    def make(original: Callable) -> Callable:
        signature = inspect.signature(original)

        def mutated(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            change(bound.arguments)
            return original(*bound.args, **bound.kwargs)

        return mutated

    return make


def wrap_result(change: Callable[..., Any]) -> Callable[[Callable], Callable]:
    """A wrapper that returns ``change(result, *args, **kwargs)`` instead of the result."""

    def make(original: Callable) -> Callable:
        def mutated(*args, **kwargs):
            return change(original(*args, **kwargs), *args, **kwargs)

        return mutated

    return make


# ---------------------------------------------------------------------------------------------------------
# The faults
# ---------------------------------------------------------------------------------------------------------
def _set(key: str, value: Callable[[Any], Any]) -> Callable[[dict[str, Any]], None]:
    def change(arguments: dict[str, Any]) -> None:
        arguments[key] = value(arguments[key])

    return change


def _toggled_norm_pix(original: Callable) -> Callable:
    def pixel_target(self, imgs):
        self.norm_pix_loss = not self.norm_pix_loss
        try:
            return original(self, imgs)
        finally:
            self.norm_pix_loss = not self.norm_pix_loss

    return pixel_target


def _random_init_export(original: Callable) -> Callable:
    def export_encoder(model, path, metadata):
        fresh = copy.deepcopy(model.encoder)
        fresh.init_weights()  # MAE's initialisation: an untrained encoder in the trained one's place
        return original(fresh, path, metadata)

    return export_encoder


def _unfrozen(result, *args, **kwargs):
    vit, report = result
    vit.requires_grad_(True)
    return vit, report


def _uniform_attention(guidance, *args, **kwargs):
    if guidance.attn_t is None:
        return guidance
    return guidance._replace(attn_t=torch.full_like(guidance.attn_t, 1.0 / guidance.attn_t.shape[-1]))


def _uniform_patterns(original: Callable) -> Callable:
    def cached_patterns(color, count, size, seed, *args, **kwargs):
        return torch.rand(count, size, size, generator=torch.Generator().manual_seed(seed))

    return cached_patterns


def _only(*names: str) -> Callable[[list[str]], set[str]]:
    return lambda traces: set(names)


def _family(*prefixes: str, but: Iterable[str] = ()) -> Callable[[list[str]], set[str]]:
    """Every method trace whose name starts with one of ``prefixes`` (a method and its variants and
    ablations), except ``but``."""
    return lambda traces: {t for t in method_names() if t.startswith(prefixes)} - set(but)


def _all_methods(traces: list[str]) -> set[str]:
    return set(method_names())


EMA_USERS = _family("rcmae", "hpm", "cmtmae", but=["cmtmae-teacher-only"])  # teacher-only has no momentum net

MUTATIONS: list[Mutation] = [
    Mutation(
        "mask-polarity",
        "MAE's loss on the visible patches (mask inverted)",
        "methods.mae.model:MAE.forward_loss",
        wrap_args(_set("mask", lambda m: ~m)),
        _family("mae", "rcmae", "colormae"),  # RC-MAE and ColorMAE inherit MAE's reconstruction loss
    ),
    Mutation(
        "loss-on-all-patches",
        "MAE's loss averaged over every patch instead of the masked ones",
        "methods.mae.model:MAE.forward_loss",
        wrap_args(_set("mask", torch.ones_like)),
        _family("mae", "rcmae", "colormae"),
    ),
    Mutation(
        "norm-pix-loss-toggled",
        "the pixel target's per-patch normalisation switched (norm_pix_loss toggled)",
        "methods.base:MIMModel.pixel_target",
        _toggled_norm_pix,
        _family("mae", "rcmae", "hpm", "colormae", "cmtmae-target-pixels"),
    ),
    Mutation(
        "decoder-pos-embed-dropped",
        "the decoder's position embedding dropped",
        "methods.decoder:MAEDecoder.embed_tokens",
        wrap_result(lambda x, self, *args, **kwargs: x - self.pos_embed),
        _all_methods,
    ),
    Mutation(
        "ema-inverted",
        "EMA momentum inverted: teacher = (1 - m) teacher + m student (the teacher copies the student)",
        "methods.ema:ema_update",
        wrap_args(_set("m", lambda m: 1.0 - m)),
        EMA_USERS,
    ),
    Mutation(
        "ema-skipped",
        "the EMA update skipped (the teacher never moves)",
        "methods.ema:EMATeacher.update",
        lambda original: lambda self, student, momentum: None,
        EMA_USERS,
    ),
    Mutation(
        "rcmae-consistency-detached",
        "RC-MAE's consistency term detached from the student (no gradient)",
        "methods.rcmae.model:RCMAE.forward_consistency",
        wrap_args(_set("pred", lambda p: p.detach())),
        _family("rcmae"),
    ),
    Mutation(
        "hpm-easy-patches-masked",
        "HPM's curriculum reversed: the patches predicted EASIEST are masked",
        "methods.hpm.model:hpm_mask",
        wrap_args(_set("predicted", lambda p: None if p is None else -p)),
        _family("hpm"),
    ),
    Mutation(
        "hpm-predictor-target-not-detached",
        "HPM's loss predictor trained on the undetached reconstruction losses",
        "methods.hpm.model:HPM.loss",
        source_edit("per_patch.detach()", "per_patch"),
        # Only the absolute objective regresses the losses' values: the relative (ranking) objective reads
        # them through comparisons, which pass no gradient, so detaching changes nothing there.
        _only("hpm+absolute"),
    ),
    Mutation(
        "colormae-uniform-noise",
        "ColorMAE's filtered-noise patterns replaced by uniform noise",
        "methods.colormae.model:cached_patterns",
        _uniform_patterns,
        _family("colormae"),
    ),
    Mutation(
        "cmtmae-alpha-constant",
        "CMT-MAE's alpha held at its stage-2 value from the first step (no teacher-only stage)",
        "methods.cmtmae.model:stage_alpha",
        wrap_result(lambda a, step, max_steps, alpha, *args, **kwargs: float(alpha)),
        # alpha = 0 (teacher-only) and stage 1 = 0 % (stage1-0) are constant anyway
        _family("cmtmae", but=["cmtmae-teacher-only", "cmtmae-stage1-0"]),
    ),
    Mutation(
        "cmtmae-teacher-attention-ignored",
        "CMT-MAE's teacher attention replaced by a uniform map",
        "methods.cmtmae.model:CMTMAE.guidance",
        wrap_result(_uniform_attention),
        # these two never mask by the teacher's attention
        _family("cmtmae", but=["cmtmae-mask-random", "cmtmae-mask-student"]),
    ),
    Mutation(
        "random-init-encoder-exported",
        "the encoder re-initialised before export (an untrained encoder in place of the trained one)",
        "reproduce.pretrain:export_encoder",
        _random_init_export,
        _all_methods,
    ),
    Mutation(
        "probe-encoder-trainable",
        "the linear probe's encoder left trainable",
        "downstream.in1k.linear_probe:load_frozen_encoder",
        wrap_result(_unfrozen),
        _only("linear_probe"),
    ),
    Mutation(
        "finetune-layer-decay-1",
        "the fine-tune's layer decay set to 1 (every block at the head's lr)",
        "downstream.in1k.finetune:run_finetune",
        source_edit(
            'paramwise_cfg=dict(layer_decay=r["layer_decay"])', "paramwise_cfg=dict(layer_decay=1.0)"
        ),
        _only("finetune"),
    ),
    Mutation(
        "knn-temperature-changed",
        "the k-NN's temperature doubled",
        "downstream.in1k.knn:knn_classify",
        wrap_args(_set("temperature", lambda t: 2 * t)),
        _only("knn"),
    ),
]


def by_name(name: str) -> Mutation:
    return next(m for m in MUTATIONS if m.name == name)


# ---------------------------------------------------------------------------------------------------------
# Running them
# ---------------------------------------------------------------------------------------------------------
def baseline(setting: Setting, names: Iterable[str], run: Callable[[str], Trace] | None = None):
    """Every trace run once unmutated: {name: (trace, the mutation targets it called)}."""
    run = run or (lambda name: run_trace(name, setting))
    runs = {}
    for name in names:
        with tracking() as called:
            trace = run(name)
        runs[name] = (trace, frozenset(called))
    return runs


@dataclass
class MutationOutcome:
    mutation: Mutation
    touched: list[str]  # the traces that call the target (re-run under the mutation)
    expected: set[str]  # the traces it must fail
    results: dict[str, Comparison]  # the comparison of every touched trace under the mutation

    @property
    def failed(self) -> set[str]:
        return {n for n, r in self.results.items() if not r.ok}


def run_mutation(
    mutation: Mutation, setting: Setting, runs: dict, run: Callable[[str], Trace] | None = None
) -> MutationOutcome:
    run = run or (lambda name: run_trace(name, setting, stop_early=True))
    touched = [n for n, (_, called) in runs.items() if mutation.target in called]
    results = {}
    with applied(mutation):
        for name in touched:
            results[name] = compare(read_trace(name), run(name))
    return MutationOutcome(mutation, touched, mutation.fails(list(runs)), results)


def main() -> int:
    import io
    import tempfile

    from tests.golden.traces import trace_names

    def quiet(name: str, stop_early: bool = False) -> Trace:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return run_trace(name, setting, stop_early=stop_early)

    with tempfile.TemporaryDirectory(prefix="golden-") as work:
        setting = Setting(work)
        runs = baseline(setting, trace_names(), quiet)
        unmatched = [n for n, (t, _) in runs.items() if not compare(read_trace(n), t).ok]
        print(
            f"unmutated: {len(runs) - len(unmatched)} of {len(runs)} traces match"
            + (f"; MISMATCH: {', '.join(unmatched)}" if unmatched else "")
        )
        print("\n| mutation | traces that call it | failed | caught first at (trace: step, term) |")
        print("|---|---|---|---|")
        ok = not unmatched
        for m in MUTATIONS:
            out = run_mutation(m, setting, runs, lambda name: quiet(name, stop_early=True))
            firsts = "; ".join(
                f"{n}: {r.first.where}, {r.first.term}" for n, r in out.results.items() if not r.ok
            )
            verdict = "as declared" if out.failed == out.expected else (f"EXPECTED {sorted(out.expected)}")
            ok &= out.failed == out.expected
            print(f"| {m.name} | {len(out.touched)} | {len(out.failed)} ({verdict}) | {firsts} |")
    return 0 if ok else 1


if __name__ == "__main__":
    import sys

    sys.exit(main())
