"""DAVIS label propagation: parity with DINO's official ``eval_video_segmentation.py`` on fixtures generated
from it (tests/fixtures/davis/README.md), and the window's invariants."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from downstream.davis.propagation import (
    LabelPropagator,
    PropagationConfig,
    build_window,
    first_frame_labels,
    labels_to_ids,
    norm_mask,
    window_mask,
)
from downstream.davis.protocol import frame_size, preprocess_frames

FIXTURES = Path(__file__).parent / "fixtures" / "davis" / "dino"
CASES = json.loads((FIXTURES / "cases.json").read_text())
PROPAGATION_CASES = sorted(k for k in CASES if not k.startswith("read_frame"))
DINO_MEAN, DINO_STD = [0.485, 0.456, 0.406], [0.228, 0.224, 0.225]


def _case(name: str) -> tuple[dict, dict[str, np.ndarray], np.ndarray]:
    data = dict(np.load(FIXTURES / f"{name}.npz"))
    first = np.asarray(Image.open(FIXTURES / f"{name}_first.png"))
    return CASES[name], data, first


def _config(c: dict) -> PropagationConfig:
    return PropagationConfig(topk=c["topk"], window_radius=c["radius"], n_last_frames=c["n_last"])


@pytest.mark.parametrize("name", ["landscape", "portrait"])
def test_frames_are_resized_and_normalised_as_dino_reads_them(name):
    image = np.asarray(Image.open(FIXTURES / f"frame_{name}.png").convert("RGB"))
    expected = np.load(FIXTURES / f"read_frame_{name}.npz")
    for key, official in expected.items():
        short = int(key.removeprefix("short"))
        size = frame_size(*image.shape[:2], short, 64)
        assert size == official.shape[1:], (key, size)
        ours = preprocess_frames(image[None], size, DINO_MEAN, DINO_STD)[0].numpy()
        np.testing.assert_allclose(ours, official, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", PROPAGATION_CASES)
def test_first_annotation_downsampled_as_dino(name):
    c, data, first = _case(name)
    labels = first_frame_labels(first, tuple(c["grid"]), c["K"])  # [hw, C]
    official = torch.from_numpy(data["first_seg"][0]).flatten(1).T  # [C, h, w] -> [hw, C]
    assert torch.equal(labels, official)


@pytest.mark.parametrize("name", PROPAGATION_CASES)
def test_soft_labels_and_written_ids_equal_dinos_loop(name):
    """Every frame's soft labels (patch resolution, before upsampling) within 1e-5 of DINO's
    ``label_propagation`` run by its own ``eval_video_tracking_davis`` loop (queue included), and the ids of
    the PNGs it wrote equal ours exactly."""
    c, data, first = _case(name)
    grid, feats = tuple(c["grid"]), torch.from_numpy(data["features"])
    prop = LabelPropagator(feats[0], first_frame_labels(first, grid, c["K"]), grid, _config(c))
    assert np.array_equal(data["ids"][0], first)  # DINO writes the given annotation as frame 0
    worst = 0.0
    for t in range(1, c["T"]):
        soft = prop.step(feats[t])
        official = torch.from_numpy(data["soft"][t - 1]).flatten(1).T
        worst = max(worst, (soft - official).abs().max().item())
        ids = labels_to_ids(soft, grid, c["patch"], tuple(c["ori"]))
        assert np.array_equal(ids, data["ids"][t]), f"frame {t}: ids differ"
    assert worst <= 1e-5, worst


def test_tiles_reproduce_the_dense_masked_topk():
    """The tiled computation equals a dense one (every affinity, masked by the full window) for grids and
    radii where tiles are clipped at every border."""
    g = torch.Generator().manual_seed(0)
    for h, w, radius in [(7, 11, 2), (9, 5, 3), (6, 6, 1), (12, 20, 4)]:
        hw, n, dim, classes = h * w, 4, 8, 3
        feats = torch.nn.functional.normalize(torch.randn(n + 1, hw, dim, generator=g), dim=2)
        labels = torch.rand(n * hw, classes, generator=g)
        cfg = PropagationConfig(topk=5, window_radius=radius, n_last_frames=n - 1)
        prop = LabelPropagator(feats[0], labels[:hw], (h, w), cfg)
        for i in range(1, n):
            prop.push(feats[i], labels[i * hw : (i + 1) * hw])
        ours = prop.propagate(feats[n])
        sim = feats[n] @ feats[:n].reshape(n * hw, dim).T  # [hw, n*hw]
        allowed = window_mask(h, w, radius).repeat(1, n)
        top, idx = sim.masked_fill(~allowed, float("-inf")).topk(5, dim=1)
        weight = torch.softmax(top / cfg.temperature, dim=1)
        dense = (weight.unsqueeze(-1) * labels[idx]).sum(1)
        torch.testing.assert_close(ours, dense, rtol=0, atol=1e-6)
        assert len(build_window(h, w, radius).tiles) > 1


def test_window_mask_matches_its_definition():
    h, w, radius = 5, 7, 2
    mask = window_mask(h, w, radius)
    for target in range(h * w):
        for source in range(h * w):
            near = abs(target // w - source // w) <= radius and abs(target % w - source % w) <= radius
            assert bool(mask[target, source]) == near
    assert window_mask(3, 4, 0).all()  # radius 0: no window, as DINO's size_mask_neighborhood=0


def test_norm_mask_matches_dinos_per_channel_loop():
    channels = [[[0.2, 0.4], [0.6, 0.8]], [[0.0, 0.0], [0.0, 0.0]], [[-1.0, -0.5], [-0.2, -0.1]]]
    x = torch.tensor([*channels, [[0.5, 1.5], [1.0, 0.5]]])
    ours = norm_mask(x.clone())
    ref = x.clone()
    for c in range(len(ref)):  # DINO's loop: only channels whose maximum is positive
        if ref[c].max() > 0:
            ref[c] = (ref[c] - ref[c].min()) / (ref[c] - ref[c].min()).max()
    torch.testing.assert_close(ours, ref)


def test_void_in_the_first_annotation_propagates_no_label():
    ids = np.array([[0, 1, 255, 2]] * 4, dtype=np.uint8)
    labels = first_frame_labels(ids, (4, 4), 2)
    assert labels.shape == (16, 3)
    assert labels.sum(1).tolist() == [1, 1, 0, 1] * 4


def test_soft_context_off_pushes_one_hot_labels():
    feats = torch.randn(2, 12, 4)
    first = torch.eye(3)[torch.arange(12) % 3]
    prop = LabelPropagator(feats[0], first, (3, 4), PropagationConfig(soft_context=False))
    prop.step(feats[1])
    _, pushed = prop.recent[-1]
    assert set(pushed.unique().tolist()) <= {0.0, 1.0} and torch.equal(pushed.sum(1), torch.ones(12))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
def test_propagation_on_gpu_matches_cpu():
    name = PROPAGATION_CASES[0]
    c, data, first = _case(name)
    grid, feats = tuple(c["grid"]), torch.from_numpy(data["features"])
    labels = first_frame_labels(first, grid, c["K"])
    cpu = LabelPropagator(feats[0], labels, grid, _config(c))
    gpu = LabelPropagator(feats[0].cuda(), labels.cuda(), grid, _config(c))
    for t in range(1, c["T"]):
        torch.testing.assert_close(gpu.step(feats[t].cuda()).cpu(), cpu.step(feats[t]), rtol=0, atol=1e-5)
