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
Then DAVIS label propagation (``--skip davis`` leaves it out): ``downstream.davis.propagation`` against a
baseline that does what DINO's ``eval_video_segmentation.py`` does (its neighbourhood mask built with four
nested loops once per video, then dense affinities, mask, top-k and a dense label product per frame), on a
480x854, 50-frame video with ViT-S/16-sized features (384-d, a 30x52 grid), the same seeded features and
first annotation for both; window construction, per-frame propagation and end to end (to the id maps) are
timed separately and the id maps are asserted identical (target: >= 3x faster end to end).
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

import numpy as np
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
                    dict(type="MethodStepHook", steps_per_epoch=warmup + steps),
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


# ---------------------------------------------------------------------------------------------------------
# DAVIS label propagation: our windowed propagation against DINO's procedure
# ---------------------------------------------------------------------------------------------------------
def dino_neighbourhood_mask(h: int, w: int, radius: int) -> torch.Tensor:
    """DINO's window: a float [h*w, h*w] mask filled one entry at a time by four nested loops."""
    mask = torch.zeros(h, w, h, w)
    for i in range(h):
        for j in range(w):
            for di in range(-radius, radius + 1):
                for dj in range(-radius, radius + 1):
                    if 0 <= i + di < h and 0 <= j + dj < w:
                        mask[i, j, i + di, j + dj] = 1
    return mask.reshape(h * w, h * w)


def dino_propagate(
    target: torch.Tensor,
    context_feats: list[torch.Tensor],
    context_labels: list[torch.Tensor],
    mask: torch.Tensor | None,
    topk: int,
    temperature: float,
) -> torch.Tensor:
    """One frame of DINO's procedure: target [hw, D], context features [D, hw] each, labels [C, h, w] each ->
    soft labels [1, C, h, w]. Dense affinities exp(cos / T) for every pair, multiplied by the window, the
    top-k taken over all context entries of each target (ties with the k-th kept), columns normalised, then a
    dense product with the context's labels."""
    n, hw = len(context_feats), target.shape[0]
    tgt = torch.nn.functional.normalize(target, dim=1).unsqueeze(0).repeat(n, 1, 1)  # [n, hw, D]
    src = torch.nn.functional.normalize(torch.stack(context_feats), dim=1)  # [n, D, hw]
    aff = torch.exp(torch.bmm(tgt, src) / temperature)  # [n, hw (targets), hw (sources)]
    if mask is not None:
        aff *= mask
    aff = aff.transpose(2, 1).reshape(-1, hw)  # [n*hw (sources), hw (targets)]
    kth = torch.topk(aff, dim=0, k=topk).values.min(dim=0).values
    aff[aff < kth] = 0
    aff = aff / aff.sum(dim=0, keepdim=True)
    labels = torch.cat(context_labels)  # [n, C, h, w]
    _, c, h, w = labels.shape
    flat = labels.reshape(n, c, -1).transpose(2, 1).reshape(-1, c).T  # [C, n*hw]
    return (flat @ aff).reshape(1, c, h, w)


def dino_ids(soft: torch.Tensor, patch: int, out_size: tuple[int, int]) -> np.ndarray:
    """DINO's post-processing: bilinear x patch, per-channel min-max (a loop), argmax, PIL NEAREST."""
    from PIL import Image

    x = torch.nn.functional.interpolate(soft, scale_factor=patch, mode="bilinear", align_corners=False)[0]
    for c in range(len(x)):
        if x[c].max() > 0:
            x[c] = (x[c] - x[c].min()) / (x[c] - x[c].min()).max()
    ids = torch.max(x, dim=0).indices.to(torch.uint8).numpy()
    return np.array(Image.fromarray(ids).resize((out_size[1], out_size[0]), 0))


def _davis_inputs(
    frames: int, size: tuple[int, int], short: tuple[int, int], patch: int, dim: int, objects: int, seed: int
):
    """Seeded features (a per-video base, a drift per frame, noise) on the grid of the resized frame, and a
    first annotation of ellipses at the original size."""
    from downstream.davis.protocol import frame_size

    height, width = size
    rows, cols = frame_size(height, width, *short)  # DINO's: 480x854 -> 480x832
    grid = (rows // patch, cols // patch)
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(grid[0] * grid[1], dim, generator=g)
    feats = [
        base + 0.1 * t * torch.randn(1, dim, generator=g) + 0.5 * torch.randn(base.shape, generator=g)
        for t in range(frames)
    ]
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    first = np.zeros((height, width), dtype=np.uint8)
    for k in range(1, objects + 1):
        cy, cx = rng.uniform(0.25, 0.75) * height, rng.uniform(0.2, 0.8) * width
        ry, rx = rng.uniform(0.1, 0.2) * height, rng.uniform(0.08, 0.15) * width
        first[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = k
    return feats, first, grid


def bench_davis(
    frames: int = 50,
    height: int = 480,
    width: int = 854,
    short_side: int = 480,
    long_side_multiple: int = 64,
    patch: int = 16,
    dim: int = 384,
    objects: int = 3,
    radius: int = 12,
    topk: int = 5,
    n_last: int = 7,
    seed: int = 0,
) -> dict[str, Any]:
    """Time DINO's procedure and ours on the same video; the id maps must be identical."""
    from collections import deque

    from downstream.davis.propagation import (
        LabelPropagator,
        PropagationConfig,
        build_window,
        first_frame_labels,
        labels_to_ids,
    )

    short = (short_side, long_side_multiple)
    feats, first, grid = _davis_inputs(frames, (height, width), short, patch, dim, objects, seed)
    h, w = grid
    labels0 = first_frame_labels(first, grid, objects)  # [hw, C]
    cfg = PropagationConfig(temperature=0.1, topk=topk, window_radius=radius, n_last_frames=n_last)

    # DINO's procedure
    t0 = time.perf_counter()
    mask = dino_neighbourhood_mask(h, w, radius) if radius > 0 else None
    t_window = time.perf_counter() - t0
    first_seg = labels0.T.reshape(1, -1, h, w)
    queue: deque = deque(maxlen=n_last)
    dino_out, dino_prop = [], 0.0
    for t in range(1, frames):
        t1 = time.perf_counter()
        soft = dino_propagate(
            feats[t],
            [feats[0].T, *(f for f, _ in queue)],
            [first_seg, *(s for _, s in queue)],
            mask,
            topk,
            0.1,
        )
        queue.append((feats[t].T, soft))
        dino_prop += time.perf_counter() - t1
        dino_out.append(dino_ids(soft, patch, (height, width)))
    dino_total = time.perf_counter() - t0

    # ours
    t0 = time.perf_counter()
    window = build_window(h, w, radius)
    o_window = time.perf_counter() - t0
    prop = LabelPropagator(feats[0], labels0, grid, cfg, window)
    ours_out, ours_prop = [], 0.0
    for t in range(1, frames):
        t1 = time.perf_counter()
        soft = prop.step(feats[t])
        ours_prop += time.perf_counter() - t1
        ours_out.append(labels_to_ids(soft, grid, patch, (height, width)))
    ours_total = time.perf_counter() - t0

    identical = all(np.array_equal(a, b) for a, b in zip(dino_out, ours_out))
    assert identical, "DAVIS bench: our id maps differ from DINO's procedure"
    steps = frames - 1
    return {
        "frames": frames,
        "frame_size": [height, width],
        "grid": [h, w],
        "feature_dim": dim,
        "window_radius": radius,
        "threads": torch.get_num_threads(),
        "device": "cpu",
        "dino": {
            "window_s": t_window,
            "propagate_per_frame_s": dino_prop / steps,
            "end_to_end_s": dino_total,
        },
        "ours": {
            "window_s": o_window,
            "propagate_per_frame_s": ours_prop / steps,
            "end_to_end_s": ours_total,
        },
        "speedup": {
            "window": t_window / o_window,
            "propagate_per_frame": dino_prop / ours_prop,
            "end_to_end": dino_total / ours_total,
        },
        "identical_ids": identical,
    }


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
    p.add_argument("--skip", default="", help="comma-separated parts to skip: methods,overhead,data,davis")
    p.add_argument("--davis-frames", type=int, default=50, help="frames of the DAVIS benchmark video")
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
    if "davis" not in skip:
        print("[bench] DAVIS label propagation ...", file=sys.stderr, flush=True)
        d = results["davis"] = bench_davis(frames=args.davis_frames)
        (fh, fw), (gh, gw) = d["frame_size"], d["grid"]
        print(
            f"\n## DAVIS label propagation ({d['frames']} frames of {fh}x{fw}, {gh}x{gw} grid, "
            f"{d['feature_dim']}-d features, window ±{d['window_radius']}, CPU, {d['threads']} thread(s))\n"
        )
        print("| | window construction (s) | propagation per frame (s) | end to end (s) |")
        print("|---|---|---|---|")
        for name in ("dino", "ours"):
            r = d[name]
            cells = f"{r['window_s']:.3f} | {r['propagate_per_frame_s']:.3f} | {r['end_to_end_s']:.2f}"
            print(f"| {name} | {cells} |")
        s = d["speedup"]
        print(
            f"| speed-up | {s['window']:.0f}x | {s['propagate_per_frame']:.1f}x | {s['end_to_end']:.1f}x "
            f"(target >= 3x) |\n\nid maps identical: {d['identical_ids']}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
