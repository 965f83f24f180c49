"""Table 3: COCO detection and instance segmentation (Mask R-CNN, box and mask AP) on every method's
pretrained encoder, fine-tuned end to end through mmdet.

    python reproduce/table3.py [--budget tiny] [--methods mae,hpm] [--seeds N] [--checkpoint NAME=PATH ...]
                               [--protocol vitdet|fpn_li2021] [--data-root DIR] [--work-dir DIR]
                               [--equalize epochs|flops]

For every discovered method (and variant) and every pretraining seed: pretrain, or reuse the finished run
with the same run key (Table 1's checkpoints, when Table 1 ran with the same budget, seeds and work dir; a
stale checkpoint is never reused). Then fine-tune Mask R-CNN on the budget's COCO-layout train split and
evaluate it once on the val split with mmdet's COCO metric (``downstream/coco``: ViTDet by default, or
``--protocol fpn_li2021``, Li et al.'s FPN on four blocks), write one record per encoder, and render Table 3
(AP box, AP mask; markdown, CSV, LaTeX and the Table 3 section of RESULTS.md) with the papers' numbers and
their protocols beside. A ``random-init`` row (the budget's ViT at MAE's initialisation, never pretrained) is
the floor; ``--no-baseline`` leaves it out. One fine-tuning run (seed 0) per encoder.
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
from downstream.coco.protocol import PROTOCOLS, RecipeError, resolve_recipe  # noqa: E402
from downstream.datasets.coco_layout import check_coco_root  # noqa: E402
from downstream.datasets.errors import DatasetError  # noqa: E402
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
from tables.specs import BASELINE  # noqa: E402


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
    p.add_argument(
        "--protocol",
        choices=sorted(PROTOCOLS),
        default=None,
        help="ViTDet (simple feature pyramid) or Li et al. 2021 (FPN on four blocks); default: the budget's",
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
    return p.parse_args(argv)


def check_coco(coco: Path, synthscenes: bool) -> None:
    """Both splits' annotation files parse and every listed image exists (no decoding: that is the run's)."""
    from synthscenes.shapes import SHAPES

    for split in ("train2017", "val2017"):
        check_coco_root(coco, split, classes=SHAPES if synthscenes else None)


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    quiet_mmengine()
    cfg = load_budget(args.budget)
    if args.equalize:
        cfg.pretrain.equalize = args.equalize
    work_dir = Path(args.work_dir)
    data = data_root.prepare(cfg, args.data_root)
    coco = data.root / "coco"
    try:  # a bad recipe or COCO root stops the run now, in one line, not after hours of pretraining
        resolve_recipe(cfg, args.protocol)
        check_coco(coco, str(cfg.data.name).startswith("synthscenes"))
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

    def evaluate(tag: str, encoder: Callable[[], Encoder]) -> list[Stage]:
        from downstream.coco import run_coco

        def go():
            enc = encoder()
            out = work_dir / "eval" / cfg.budget / enc.method / f"pretrain{enc.pretrain_seed}" / "coco"
            result = run_coco(
                enc.path, cfg, coco, out, seed=0, protocol=args.protocol, progress=sys.stderr.isatty()
            )
            return protocol_record(
                result, cfg=cfg, encoder=enc, manifest_hash=data.manifest_hash, work_dir=work_dir
            )

        return [Stage(f"{tag}: COCO Mask R-CNN", go, 1.0)]

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

    rendered = render_table(
        3,
        work_dir,
        cfg.budget,
        Path(args.out_dir),
        results_md=None if args.no_results_md else REPO / "RESULTS.md",
    )
    print(rendered.markdown)
    return Path(args.out_dir) / cfg.budget / "table3.md"


if __name__ == "__main__":
    main()
