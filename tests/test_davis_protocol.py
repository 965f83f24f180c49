"""The DAVIS protocol end to end on micro: fresh results, records, recipe errors, non-square frame grids, the
speed benchmark's baseline (checked against DINO's fixture), and Table 4 with its visualisation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from downstream.davis import run_davis
from downstream.davis.propagation import first_frame_labels
from downstream.davis.protocol import frame_size
from downstream.recipe import resolve_recipe
from downstream.result import ProtocolInputs
from methods.backbone import build_vit, sincos_pos_embed_2d
from methods.encoder_file import export_encoder, load_encoder
from reproduce import bench, data_root
from reproduce.budget import load_budget
from reproduce.pipeline import protocol_record, random_init_encoder
from tables.records import read_record
from tests.protocol_helpers import assert_recipe_error, bad_root_exit

DINO = Path(__file__).parent / "fixtures" / "davis" / "dino"


@pytest.fixture(scope="module")
def micro():
    return load_budget("micro")


@pytest.fixture(scope="module")
def micro_data(micro):
    return data_root.prepare(micro)


def test_frame_size_is_dinos_rule():
    assert frame_size(480, 854, 480, 64) == (480, 832)  # DAVIS 480p
    assert frame_size(854, 480, 480, 64) == (832, 480)
    assert frame_size(64, 64, 64, 16) == (64, 64)  # SynthScenes clips at micro


def test_encoder_loads_on_a_non_square_frame_grid(tmp_path):
    """Video frames are not square: the ViT is built for the frame's grid and the strict loader resamples the
    square position embedding to it, as a declared transform."""
    vit = build_vit("micro")
    export_encoder(vit, tmp_path / "enc.pth", {"method": "test"})
    frame_vit = build_vit("micro", img_size=(64, 96))
    report = load_encoder(tmp_path / "enc.pth", frame_vit, interpolate_pos_embed=True)
    assert report.transforms == [
        "interpolate_pos_embed: 8x8 -> 16x24 (bicubic, prefix tokens kept, as official MAE)"
    ]
    assert frame_vit.forward_features(torch.zeros(1, 3, 64, 96)).shape == (1, 1 + 16 * 24, 64)
    table = sincos_pos_embed_2d(8, (2, 3), cls_token=False)  # 2 rows, 3 columns
    assert torch.equal(table[1, :4], table[4, :4])  # first half: the column (1 in both)
    assert torch.equal(table[3, 4:], table[5, 4:])  # second half: the row (1 in both)


def test_run_davis_writes_fresh_results_and_a_record(micro, micro_data, tmp_path):
    enc = random_init_encoder(micro, 0, tmp_path)
    out = tmp_path / "davis"
    stale = out / "results" / "old-sequence" / "00000.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"stale")
    (out / "results" / "global_results-val.csv").write_text("J&F-Mean\n0.999\n")
    result = run_davis(ProtocolInputs(enc.path, micro, micro_data.davis, out, progress=False))
    results = Path(result["results_dir"])
    assert not stale.parent.exists()  # the folder is emptied before a run, never mixed with an old one
    assert set(result["metrics"]) == {
        "JF_mean",
        "J_mean",
        "J_recall",
        "J_decay",
        "F_mean",
        "F_recall",
        "F_decay",
    }
    assert all(0 <= result["metrics"][k] <= 100 for k in ("JF_mean", "J_mean", "F_mean"))
    assert result["metrics"]["JF_mean"] == pytest.approx(
        (result["metrics"]["J_mean"] + result["metrics"]["F_mean"]) / 2
    )
    assert (results / "global_results-val.csv").read_text().splitlines()[1] != "0.999"
    assert result["data"]["num_sequences"] == 4 and result["data"]["num_frames"] == 64
    for name, seq in result["data"]["sequences"].items():
        assert seq["grid"] == [16, 16]  # 64-px frames at patch 4
        pngs = sorted((results / name).glob("*.png"))
        assert len(pngs) == seq["frames"] and Image.open(pngs[1]).mode == "P"
    assert result["load_report"]["transforms"] == [
        "interpolate_pos_embed: 8x8 -> 16x16 (bicubic, prefix tokens kept, as official MAE)"
    ]
    saved = json.loads((results / "results-val.json").read_text())
    assert saved["global"]["J&F-Mean"] * 100 == pytest.approx(result["metrics"]["JF_mean"])
    record = read_record(
        protocol_record(
            result, cfg=micro, encoder=enc, manifest_hash=micro_data.manifest_hash, work_dir=tmp_path
        )
    )
    assert record.protocol == "davis" and record.metrics == result["metrics"]
    assert "window ±6 patches, top-5" in record.extra["protocol_detail"]
    assert record.extra["recipe_values"]["std"] == [0.228, 0.224, 0.225]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.pop("topk"), r"davis section: missing \['topk'\]"),
        (lambda d: d.update(knn=3), r"davis section: unknown \['knn'\]"),
        (
            lambda d: d.update(frame_resize="bicubic"),
            r"davis\.frame_resize = 'bicubic'; implemented: \['bilinear'\]",
        ),
        (lambda d: d.update(window_radius=-1), r"invalid window_radius=-1"),
        (lambda d: d.update(short_side=0), r"davis\.short_side = 0 must be a positive integer"),
    ],
)
def test_recipe_errors_are_one_line_and_name_the_key(micro, change, message):
    assert_recipe_error(micro, "davis", change, message)


def test_every_budget_has_a_valid_davis_recipe():
    for name in ("micro", "tiny", "small", "base", "base-300e"):
        r = resolve_recipe(load_budget(name), "davis")
        assert r["std"] == [0.228, 0.224, 0.225] and r["topk"] == 5 and r["n_last_frames"] == 7
    paper = resolve_recipe(load_budget("base"), "davis")
    assert (paper["short_side"], paper["long_side_multiple"], paper["window_radius"]) == (480, 64, 12)


def test_bench_baseline_is_dinos_procedure():
    """The speed benchmark's baseline (DINO's procedure, rewritten) reproduces DINO's own loop on the parity
    fixture, so the speed-up is measured against the real thing."""
    case = "window2_top5_last3"
    c = json.loads((DINO / "cases.json").read_text())[case]
    data = np.load(DINO / f"{case}.npz")
    first = np.asarray(Image.open(DINO / f"{case}_first.png"))
    grid, feats = tuple(c["grid"]), torch.from_numpy(data["features"])
    first_seg = first_frame_labels(first, grid, c["K"]).T.reshape(1, -1, *grid)
    mask = bench.dino_neighbourhood_mask(*grid, c["radius"])
    queue: list = []
    for t in range(1, c["T"]):
        soft = bench.dino_propagate(
            feats[t],
            [feats[0].T, *(f for f, _ in queue)],
            [first_seg, *(s for _, s in queue)],
            mask,
            c["topk"],
            0.1,
        )
        queue = [*queue, (feats[t].T, soft)][-c["n_last"] :]
        torch.testing.assert_close(soft, torch.from_numpy(data["soft"][t - 1])[None], rtol=0, atol=1e-5)
        assert np.array_equal(bench.dino_ids(soft.clone(), c["patch"], tuple(c["ori"])), data["ids"][t])


def test_bench_runs_small_and_labels_are_identical():
    r = bench.bench_davis(
        frames=5, height=72, width=120, short_side=64, long_side_multiple=32, patch=8, dim=16, radius=2
    )
    assert r["identical_ids"] and r["grid"] == [8, 12]
    assert set(r["speedup"]) == {"window", "propagate_per_frame", "end_to_end"}


@pytest.mark.e2e
def test_table4_renders_with_its_visualisation(tmp_path):
    from reproduce import table4

    out = tmp_path / "out"
    args = ["--budget", "micro", "--methods", "mae", "--seeds", "1", "--work-dir", str(tmp_path)]
    table4.main([*args, "--out-dir", str(out), "--no-results-md"])
    markdown = (out / "micro" / "table4.md").read_text()
    for row in ("mae", "random-init"):
        line = next(x for x in markdown.splitlines() if x.startswith(f"| {row} |"))
        assert float(line.strip("|").split("|")[1].strip(" *≈").split()[0]) > 0  # a measured J&F-Mean
    assert "DAVIS: DINO label propagation" in markdown  # the protocol detail in the notes
    panel = out / "micro" / table4.VISUALISATION
    assert panel.is_file() and Image.open(panel).size[0] > 300
    assert (tmp_path / "records" / "micro" / "mae" / "davis" / "pretrain0-seed0.json").is_file()


def test_table4_stops_early_on_a_bad_davis_root(tmp_path, monkeypatch, capsys):
    """A missing DAVIS root is one line naming the path before any pretraining starts."""
    from reproduce import table4

    message = bad_root_exit(table4, "imagenet", tmp_path, monkeypatch, capsys)
    assert "davis/ImageSets/2017/val.txt: missing sequence list" in message


def test_the_colour_histogram_reference_sees_each_patch_s_colours_and_nothing_else():
    from downstream.davis.colour_histogram import ColourHistogramFrames

    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    rgb = torch.zeros(1, 3, 8, 16)
    rgb[:, 0, :, :8] = 1.0  # left patch red; right patch half blue, half black
    rgb[:, 2, :4, 8:] = 1.0
    x = (rgb - torch.tensor(mean)[None, :, None, None]) / torch.tensor(std)[None, :, None, None]
    feats = ColourHistogramFrames(8, mean, std, bins=2).features(x)
    assert feats.shape == (1, 2, 8)
    red, blue, black = 1 * 4, 1, 0  # cell = (r * 2 + g) * 2 + b
    assert feats[0, 0, red] == 1 and feats[0, 0].sum() == 1
    assert feats[0, 1, blue] == 0.5 and feats[0, 1, black] == 0.5
    # the same colours elsewhere in the patch: the same feature (no position, no shape)
    assert torch.equal(ColourHistogramFrames(8, mean, std, bins=2).features(x.flip(-2)), feats)
