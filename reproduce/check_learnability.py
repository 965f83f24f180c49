"""Is SynthScenes' classification task neither trivial nor impossible? Measure it.

    python reproduce/check_learnability.py --budget tiny [--cnn-epochs 10] [--threads 1] [--json out.json]

Reads the budget's class-folder tree (generating the dataset first if it is not there) and reports
validation accuracy of four classifiers trained on the train split:

- a linear classifier on raw pixels, and one on colour histograms: the class (shape type of the largest
  object) must not be readable from colour or from where bright pixels are;
- a linear classifier on bag-of-words of the captions: the captions must not give the label away (they
  name every object, never sizes, so they only narrow the label down to the shapes present);
- a small supervised CNN trained for a few minutes (10 epochs): the label must be learnable from the image.
Chance is 1 / 8.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from downstream.datasets import ImageFolderDataset, read_captions  # noqa: E402
from reproduce.data import budget_config  # noqa: E402
from synthscenes.generate import ensure  # noqa: E402


def load_split(root: Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    dataset = ImageFolderDataset(root, split, transform=np.asarray)
    captions = dict(read_captions(root, split))
    images = np.stack([dataset[i][0] for i in range(len(dataset))])
    return images, np.array(dataset.targets), [captions[path] for path, _ in dataset.samples]


def fit_linear(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    steps: int = 300,
    weight_decay: float = 1e-4,
) -> float:
    """Multinomial logistic regression (full batch, Adam) on standardised features; validation accuracy."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    model = nn.Linear(train_x.shape[1], int(train_y.max()) + 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=weight_decay)
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(train_x), train_y).backward()
        optimizer.step()
    with torch.no_grad():
        return (model(test_x).argmax(1) == test_y).float().mean().item()


def colour_histograms(images: np.ndarray, bins: int = 8) -> torch.Tensor:
    """Joint RGB histogram (bins^3), normalised per image: all of the colour, none of the layout."""
    q = (images.astype(np.int64) * bins) // 256
    codes = (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]
    flat = codes.reshape(len(images), -1)
    hist = np.stack([np.bincount(row, minlength=bins**3) for row in flat]).astype(np.float32)
    return torch.from_numpy(hist / flat.shape[1])


def bag_of_words(train: list[str], test: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    vocab = sorted({w for text in train for w in re.findall(r"[a-z]+", text)})
    index = {w: i for i, w in enumerate(vocab)}

    def encode(texts: list[str]) -> torch.Tensor:
        out = torch.zeros(len(texts), len(vocab))
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text):
                if word in index:
                    out[row, index[word]] += 1
        return out

    return encode(train), encode(test)


def small_cnn(classes: int) -> nn.Module:
    """~0.25 M parameters: a stride-2 stem, then conv blocks at 32, 16 and 8 px, global pooling."""

    def block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
        conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        return nn.Sequential(conv, nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    return nn.Sequential(
        block(3, 24, stride=2), block(24, 32), nn.MaxPool2d(2),
        block(32, 64), nn.MaxPool2d(2),
        block(64, 128), block(128, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, classes),
    )  # fmt: skip


def fit_cnn(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    epochs: int,
    batch: int = 128,
) -> tuple[float, float]:
    """Train the small CNN for ``epochs`` (AdamW, one-cycle lr; flips and 90-degree rotations, to which the
    class is invariant); returns (val accuracy, seconds)."""

    def to_tensor(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x).permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.25)

    xs, ys, xt, yt = (
        to_tensor(train_x),
        torch.from_numpy(train_y),
        to_tensor(test_x),
        torch.from_numpy(test_y),
    )
    model = small_cnn(int(ys.max()) + 1)
    steps = len(xs) // batch
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, 3e-3, total_steps=epochs * steps)
    start = time.perf_counter()
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(xs))
        for step in range(steps):
            idx = order[step * batch : (step + 1) * batch]
            x = xs[idx]
            if torch.rand(()) < 0.5:
                x = x.flip(3)
            x = torch.rot90(x, int(torch.randint(4, ())), dims=(2, 3))
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), ys[idx]).backward()
            optimizer.step()
            scheduler.step()
    model.eval()
    with torch.no_grad():
        predictions = torch.cat([model(xt[i : i + 512]).argmax(1) for i in range(0, len(xt), 512)])
    return (predictions == yt).float().mean().item(), time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", choices=("micro", "tiny"), default="tiny")
    parser.add_argument("--out", help="dataset root (default: the budget's)")
    parser.add_argument("--cnn-epochs", type=int, default=10)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (1 is faster on a busy machine)"
    )
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = budget_config(args.budget, args.out)
    manifest, _ = ensure(cfg, cfg.root)
    root = Path(cfg.root) / "imagenet"
    train_x, train_y, train_text = load_split(root, "train")
    test_x, test_y, test_text = load_split(root, "val")
    ty, vy = torch.from_numpy(train_y), torch.from_numpy(test_y)

    print(
        f"SynthScenes-{args.budget} learnability: val accuracy, {len(train_y)} train / {len(test_y)} val "
        f"images (manifest {manifest['sha256'][:12]})",
        flush=True,
    )
    results: dict[str, float] = {}

    def report(name: str, value: float) -> None:
        results[name] = value
        print(f"  {name:30s} {value:6.3f}", flush=True)

    report("chance", 1 / (int(train_y.max()) + 1))
    flat = lambda x: torch.from_numpy(x.reshape(len(x), -1).astype(np.float32) / 255)
    report("linear_raw_pixels", fit_linear(flat(train_x), ty, flat(test_x), vy))
    report(
        "linear_colour_histogram", fit_linear(colour_histograms(train_x), ty, colour_histograms(test_x), vy)
    )
    bow_train, bow_test = bag_of_words(train_text, test_text)
    report("linear_caption_bag_of_words", fit_linear(bow_train, ty, bow_test, vy))
    accuracy, seconds = fit_cnn(train_x, train_y, test_x, test_y, args.cnn_epochs)
    report("small_cnn", accuracy)
    print(f"  (small CNN: {args.cnn_epochs} epochs in {seconds:.0f} s on {torch.get_num_threads()} threads)")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    **results,
                    "cnn_epochs": args.cnn_epochs,
                    "cnn_seconds": seconds,
                    "manifest_sha256": manifest["sha256"],
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
