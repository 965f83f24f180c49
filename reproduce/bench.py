"""Benchmarks: what each method costs to train, and what the harness itself costs.

    python reproduce/bench.py --budget tiny [--methods mae,rcmae] [--steps 20] [--json OUT]

For each method, on the budget's architecture and batch, with synthetic in-memory images (no data loading):
- training images/s over ``--steps`` optimizer steps after warm-up;
- FLOPs per image of one full training step (forward, backward, every extra teacher/EMA forward), counted
  with ``torch.utils.flop_counter`` (``methods.cost``; FLOPs = 2 x multiply-adds);
- peak memory: ``torch.cuda.max_memory_allocated`` on GPU; on CPU, the peak RSS of a fresh subprocess that
  runs only that method (so methods do not inherit each other's high-water mark).
Then the harness overhead: the same MAE steps timed inside the mmengine Runner (``StepLoop``, hooks, logging)
against a bare PyTorch loop over the same model and the same in-memory batches (target: under 10 %).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _model_and_optimizer(method: str, budget_cfg, device):
    from mmengine.optim import build_optim_wrapper

    from methods.base import PARAMWISE_CFG
    from reproduce.budget import build_model

    model = build_model(method, budget_cfg).to(device)
    model.teacher_momentum = 0.99
    pre = budget_cfg.pretrain
    wrapper = build_optim_wrapper(
        model,
        dict(
            optimizer=dict(type="AdamW", lr=1e-4, betas=tuple(pre.betas), weight_decay=pre.weight_decay),
            paramwise_cfg=PARAMWISE_CFG,
        ),
    )
    return model, wrapper


def _batches(n: int, batch: int, img_size: int, device) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [
        {
            "inputs": torch.randn(batch, 3, img_size, img_size, generator=g).to(device),
            "data_samples": torch.arange(i * batch, (i + 1) * batch),
        }
        for i in range(n)
    ]


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bare_loop(model, wrapper, batches, warmup: int, device) -> float:
    """Seconds for the timed steps of a plain loop: forward, parse_losses, backward, step, EMA hook."""
    model.train()
    start = 0.0
    for i, data in enumerate(batches):
        if i == warmup:
            _sync(device)
            start = time.perf_counter()
        model.set_progress(step=i, max_steps=len(batches))
        losses = model(data["inputs"], data["data_samples"], mode="loss")
        loss, _ = model.parse_losses(losses)
        wrapper.update_params(loss)
        model.after_train_step()
    _sync(device)
    return time.perf_counter() - start


def bench_method(method: str, budget: str, steps: int, warmup: int = 3) -> dict[str, Any]:
    from methods.cost import count_flops
    from reproduce.budget import load_budget

    torch.manual_seed(0)
    cfg = load_budget(budget)
    device = _device()
    model, wrapper = _model_and_optimizer(method, cfg, device)
    batch = cfg.pretrain.batch_size
    batches = _batches(warmup + steps, batch, model.img_size, device)

    probe = 8
    x = batches[0]["inputs"][:probe]

    def one_step():
        losses = model.loss(x, sample_ids=torch.arange(probe))
        sum(v for k, v in losses.items() if "loss" in k).backward()
        model.after_train_step()

    flops = count_flops(one_step) / probe
    wrapper.zero_grad()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds = bare_loop(model, wrapper, batches, warmup, device)
    out = {
        "method": method,
        "images_per_s": steps * batch / seconds,
        "flops_per_image": flops,
        "params_trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "params_total": sum(p.numel() for p in model.parameters()),
        "device": str(device),
    }
    if device.type == "cuda":
        out["peak_memory_bytes"] = torch.cuda.max_memory_allocated()
    return out


def bench_method_subprocess(method: str, budget: str, steps: int) -> dict[str, Any]:
    """Run ``bench_method`` in a fresh process; on CPU add its peak RSS (from wait4's rusage)."""
    cmd = [sys.executable, __file__, "--one", method, "--budget", budget, "--steps", str(steps)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=ROOT, text=True)
    out_text = proc.stdout.read()
    _, status, rusage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"benchmark of '{method}' failed (exit {proc.returncode}); run: {' '.join(cmd)}")
    result = json.loads(out_text.strip().splitlines()[-1])
    if "peak_memory_bytes" not in result:
        result["peak_memory_bytes"] = rusage.ru_maxrss * 1024  # ru_maxrss is in KiB on Linux
        result["peak_memory_kind"] = "process peak RSS (CPU)"
    else:
        result["peak_memory_kind"] = "torch.cuda.max_memory_allocated"
    return result


def harness_overhead(budget: str, steps: int, warmup: int = 3, repeats: int = 3) -> dict[str, float]:
    """MAE steps inside the Runner vs. a bare loop over the same model and in-memory batches.

    Both paths are timed ``repeats`` times, alternating, and the best of each is compared: on a shared
    2-core machine the noise between runs (±20 %) is larger than the overhead being measured."""
    import tempfile

    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    from methods.base import PARAMWISE_CFG
    from reproduce import harness  # noqa: F401  (StepLoop, hooks)
    from reproduce.budget import load_budget

    cfg = load_budget(budget)
    device = _device()
    batch = cfg.pretrain.batch_size

    class InMemory(torch.utils.data.Dataset):
        def __init__(self, batches):
            self.items = [
                (b["inputs"][i].cpu(), int(b["data_samples"][i]))
                for b in batches
                for i in range(len(b["inputs"]))
            ]

        def __len__(self):
            return len(self.items)

        def __getitem__(self, key):
            _epoch, index = key
            x, sid = self.items[index]
            return {"inputs": x, "data_samples": sid}

    class Timer(Hook):
        priority = "LOWEST"

        def __init__(self):
            self.start = None

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            if runner.iter + 1 == warmup:
                _sync(device)
                self.start = time.perf_counter()

    bare, runner_times = [], []
    for _ in range(repeats):
        torch.manual_seed(0)
        model, wrapper = _model_and_optimizer("mae", cfg, device)
        batches = _batches(warmup + steps, batch, model.img_size, device)
        bare.append(bare_loop(model, wrapper, batches, warmup, device))

        torch.manual_seed(0)
        model, _ = _model_and_optimizer("mae", cfg, device)
        timer = Timer()
        with tempfile.TemporaryDirectory() as tmp:
            runner = Runner(
                model=model,
                work_dir=tmp,
                train_dataloader=dict(
                    dataset=InMemory(batches),
                    sampler=dict(type="KeyedInfiniteSampler", batch_size=batch, shuffle=False),
                    batch_size=batch,
                    num_workers=0,
                    collate_fn=dict(type="default_collate"),
                ),
                train_cfg=dict(type="StepLoop", max_iters=warmup + steps),
                optim_wrapper=dict(
                    optimizer=dict(type="AdamW", lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05),
                    paramwise_cfg=PARAMWISE_CFG,
                ),
                default_hooks=dict(checkpoint=None, logger=dict(type="LoggerHook", interval=10)),
                custom_hooks=[
                    dict(type="NonFiniteLossHook"),
                    dict(type="TrainingProgressHook", steps_per_epoch=warmup + steps),
                    timer,
                ],
                log_processor=dict(by_epoch=False),
                default_scope="mmengine",
                log_level="WARNING",
            )
            runner.train()
            _sync(device)
            runner_times.append(time.perf_counter() - timer.start)
    best_bare, best_runner = min(bare), min(runner_times)
    return {
        "bare_s": best_bare,
        "runner_s": best_runner,
        "overhead": best_runner / best_bare - 1.0,
        "steps": steps,
        "batch": batch,
        "repeats": repeats,
    }


def bench_data(budget: str) -> dict[str, Any]:
    from reproduce.data import budget_config
    from synthscenes.bench import bench_generation

    return bench_generation(budget_config(budget))


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| method | train img/s | GFLOPs / image (train step) | peak memory (MiB) | trainable params |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['images_per_s']:.0f} | {r['flops_per_image'] / 1e9:.4f} | "
            f"{r['peak_memory_bytes'] / 2**20:.0f} | {r['params_trainable'] / 1e6:.2f} M |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", default="tiny", help="budget whose architecture and batch are benchmarked")
    p.add_argument("--methods", default=None, help="comma-separated methods (default: every method)")
    p.add_argument("--steps", type=int, default=20, help="timed optimizer steps per method")
    p.add_argument("--skip", default="", help="comma-separated parts to skip: methods,overhead,data")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: one method, JSON on stdout
    args = p.parse_args(argv)
    torch.set_num_threads(min(torch.get_num_threads(), os.cpu_count() or 1))

    if args.one:
        print(json.dumps(bench_method(args.one, args.budget, args.steps)))
        return {}

    import methods

    skip = set(filter(None, args.skip.split(",")))
    names = args.methods.split(",") if args.methods else methods.list_methods()
    results: dict[str, Any] = {"budget": args.budget}
    if "methods" not in skip:
        rows = []
        for name in names:
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            rows.append(bench_method_subprocess(name, args.budget, args.steps))
        results["methods"] = rows
        print(f"\n## Training cost per method ({args.budget} budget, {rows[0]['device']})\n")
        print(format_table(rows))
        print("\nFLOPs = 2 x multiply-adds, one full training step per image (extra forwards included).")
    if "overhead" not in skip:
        print("[bench] harness overhead ...", file=sys.stderr, flush=True)
        ov = harness_overhead(args.budget, args.steps)
        results["harness_overhead"] = ov
        print(
            f"\n## Harness overhead (MAE, {ov['steps']} steps of batch {ov['batch']}, "
            f"best of {ov['repeats']})\n"
        )
        print(
            f"bare loop {ov['bare_s']:.2f} s, mmengine Runner {ov['runner_s']:.2f} s: "
            f"overhead {100 * ov['overhead']:+.1f} % (target < 10 %)"
        )
    if "data" not in skip:
        print("[bench] dataset generation ...", file=sys.stderr, flush=True)
        results["data"] = bench_data(args.budget)
        print(f"\n## Dataset generation ({args.budget})\n\n{json.dumps(results['data'], indent=2)}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
