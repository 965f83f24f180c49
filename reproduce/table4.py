"""Table 4: DAVIS-2017 video object segmentation by label propagation on every method's frozen encoder
(DINO's procedure, the official metrics), with a visualisation of one sequence next to the table.

    python reproduce/table4.py [--budget tiny] [--methods mae,hpm] [--seeds N] [--checkpoint NAME=PATH ...]
                               [--data-root DIR] [--work-dir DIR] [--equalize epochs|flops]

For every discovered method (and variant) and every pretraining seed: pretrain, or reuse the finished run
with the same run key (Table 1's checkpoints, when Table 1 ran with the same budget, seeds and work dir; a
stale checkpoint is never reused). Then propagate the first annotation of each DAVIS ``val`` sequence
(``downstream/davis``), score the predictions as the davis2017-evaluation toolkit does, write one record per
encoder, and render Table 4 (J&F-Mean, J-Mean, F-Mean; markdown, CSV, LaTeX and the Table 4 section of
RESULTS.md) and ``table4_davis.png`` (one sequence: frames, ground truth, each row's masks). A
``random-init`` row (the budget's ViT at MAE's initialisation, never pretrained) is the floor;
``--no-baseline`` leaves it out. The protocol has no randomness: one evaluation per encoder.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

import methods  # noqa: E402
from downstream.datasets.davis import check_davis_root  # noqa: E402
from downstream.datasets.errors import DatasetError  # noqa: E402
from downstream.davis import run_davis  # noqa: E402
from downstream.davis.protocol import RecipeError, resolve_recipe  # noqa: E402
from downstream.davis.visualize import sequence_panel  # noqa: E402
from reproduce import data_root  # noqa: E402
from reproduce.budget import load_budget  # noqa: E402
from reproduce.pipeline import (  # noqa: E402
    Encoder,
    Progress,
    Stage,
    external_encoders,
    pretrained_stages,
    protocol_record,
    quiet_mmengine,
    random_init_encoder,
)
from reproduce.table1 import DEFAULT_SEEDS  # noqa: E402
from tables.render import render_table  # noqa: E402
from tables.specs import BASELINE, row_order_key  # noqa: E402

VISUALISATION = "table4_davis.png"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", default="tiny", help="budget name (reproduce/budgets/); default: tiny")
    p.add_argument(
        "--methods", default=None, help="comma-separated methods/variants (default: all discovered)"
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="pretraining seeds per method (default: Table 1's, so its checkpoints are reused)",
    )
    p.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="add a row for an external encoder file (e.g. a converted official checkpoint)",
    )
    p.add_argument("--data-root", default=None, help="dataset root for real-data budgets (README.md)")
    p.add_argument("--work-dir", default=str(REPO / "work_dirs"), help="runs and records go here")
    p.add_argument(
        "--equalize",
        choices=["epochs", "flops"],
        default=None,
        help="equal epochs (the papers' convention) or equal training FLOPs per method",
    )
    p.add_argument("--out-dir", default=str(REPO / "tables" / "out"), help="rendered tables go here")
    p.add_argument("--no-results-md", action="store_true", help="do not rewrite RESULTS.md")
    p.add_argument(
        "--no-baseline",
        action="store_true",
        help="leave out the random-init row (the budget's ViT evaluated without pretraining)",
    )
    p.add_argument("--sequence", default=None, help="visualised sequence (default: the split's first)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    quiet_mmengine()
    cfg = load_budget(args.budget)
    if args.equalize:
        cfg.pretrain.equalize = args.equalize
    work_dir = Path(args.work_dir)
    data = data_root.prepare(cfg, args.data_root)
    try:  # a bad recipe or DAVIS root stops the run now, in one line, not after hours of pretraining
        recipe = resolve_recipe(cfg)
        check_davis_root(data.davis, recipe["split"], recipe["resolution"])
    except (RecipeError, DatasetError) as e:
        raise SystemExit(f"error: {e}") from None
    names = args.methods.split(",") if args.methods else methods.list_methods()
    unknown = sorted(set(names) - set(methods.list_methods()))
    if unknown:
        raise SystemExit(
            f"unknown method(s) {', '.join(unknown)}; known: {', '.join(methods.list_methods())}"
        )
    pretrain_seeds = range(args.seeds if args.seeds is not None else DEFAULT_SEEDS.get(cfg.budget, (1,))[0])
    extra_args = ["--cfg-options", f"pretrain.equalize={cfg.pretrain.equalize}"]
    shown: dict[str, Path] = {}  # row -> predictions of its first pretraining seed, for the visualisation
    scores: dict[str, float] = {}

    def evaluate(tag: str, encoder: Callable[[], Encoder]) -> list[Stage]:
        def go():
            enc = encoder()
            out = work_dir / "eval" / cfg.budget / enc.method / f"pretrain{enc.pretrain_seed}" / "davis"
            result = run_davis(enc.path, cfg, data.davis, out, seed=0, progress=sys.stderr.isatty())
            if enc.pretrain_seed == pretrain_seeds[0]:  # the visualised row
                shown[enc.method] = Path(result["results_dir"])
                scores[enc.method] = result["metrics"]["JF_mean"]
            return protocol_record(
                result, cfg=cfg, encoder=enc, manifest_hash=data.manifest_hash, work_dir=work_dir
            )

        return [Stage(f"{tag}: DAVIS label propagation", go, 0.5)]

    stages = pretrained_stages(
        names,
        pretrain_seeds,
        budget=cfg.budget,
        work_dir=work_dir,
        data_root=args.data_root,
        extra_args=extra_args,
        evaluate=evaluate,
    )
    if not args.no_baseline:
        for seed in pretrain_seeds:
            stages += evaluate(
                f"{BASELINE} (init seed {seed})", lambda seed=seed: random_init_encoder(cfg, seed, work_dir)
            )
    for ext in external_encoders(args.checkpoint):
        stages += evaluate(ext.method, lambda ext=ext: ext)
    Progress(stages).run()

    out = Path(args.out_dir) / cfg.budget
    rendered = render_table(
        4,
        work_dir,
        cfg.budget,
        Path(args.out_dir),
        results_md=None if args.no_results_md else REPO / "RESULTS.md",
    )
    rows = sorted(shown, key=row_order_key)
    panel = sequence_panel(
        data.davis,
        {f"{m} (J&F {scores[m]:.1f})": shown[m] for m in rows},
        out / VISUALISATION,
        sequence=args.sequence,
        split=recipe["split"],
        title=f"Table 4 ({cfg.budget}): DAVIS label propagation, first pretraining seed of each row",
    )
    print(rendered.markdown)
    print(f"visualisation: {panel}")
    return out / "table4.md"


if __name__ == "__main__":
    main()
