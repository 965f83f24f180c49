"""DAVIS metrics: parity with the davis2017-evaluation toolkit on a synthetic set it scored
(tests/fixtures/davis/README.md), hand-made masks with known answers, and the evaluator's command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from downstream.datasets.errors import DatasetError
from downstream.davis import evaluate as davis_eval
from downstream.davis.metrics import (
    boundary_f,
    boundary_radius,
    disk,
    f_measure,
    jaccard,
    seg2bmap,
    statistics,
)

FIXTURE = Path(__file__).parent / "fixtures" / "davis" / "toolkit"
OFFICIAL = json.loads((FIXTURE / "toolkit_results.json").read_text())


@pytest.fixture(scope="module")
def scores():
    return davis_eval.evaluate_results(FIXTURE / "root", FIXTURE / "results", progress=False)


# ---------------------------------------------------------------------------------- parity with the toolkit
def test_per_frame_j_and_f_equal_the_toolkits(scores):
    """Several objects, a void band (background in the semi-supervised task), objects missing from the
    ground truth for some frames and from the prediction entirely (zero padding), a 480x854 sequence (8 px
    boundary tolerance) and an empty predicted frame."""
    assert [s.name for s in scores.sequences] == list(OFFICIAL["per_frame"])
    for seq in scores.sequences:
        official = OFFICIAL["per_frame"][seq.name]
        assert seq.frames == official["frames"]
        np.testing.assert_allclose(seq.J, official["J"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(seq.F, official["F"], rtol=0, atol=1e-12)


def test_mean_recall_decay_per_object_equal_the_toolkits(scores):
    ours = scores.per_object()
    assert [r["object"] for r in ours] == [r["object"] for r in OFFICIAL["per_object"]]
    for mine, theirs in zip(ours, OFFICIAL["per_object"]):
        for key in ("JM", "JR", "JD", "FM", "FR", "FD"):
            assert abs(mine[key] - theirs[key]) <= 1e-6, (mine["object"], key, mine[key], theirs[key])


def test_global_results_equal_the_toolkits(scores):
    ours = scores.global_results()
    assert list(ours) == list(OFFICIAL["global"])
    for key, value in OFFICIAL["global"].items():
        assert abs(ours[key] - value) <= 1e-6, (key, ours[key], value)


def test_command_line_writes_the_toolkits_csvs(tmp_path, capsys):
    results = tmp_path / "results"
    shutil.copytree(FIXTURE / "results", results)
    # a stale CSV in the results folder is overwritten, never read back (the toolkit would reuse it)
    (results / "global_results-val.csv").write_text("J&F-Mean\n0.999\n")
    davis_eval.main(["--davis-root", str(FIXTURE / "root"), "--results", str(results), "--no-progress"])
    for name in ("global_results-val.csv", "per-sequence_results-val.csv"):
        assert (results / name).read_text() == (FIXTURE / name).read_text(), name
    full = json.loads((results / "results-val.json").read_text())
    assert abs(full["global"]["J&F-Mean"] - OFFICIAL["global"]["J&F-Mean"]) <= 1e-6
    assert "J&F-Mean" in capsys.readouterr().out


# ---------------------------------------------------------------------------------- hand-made masks
def _square(size: int = 40, top: int = 10, left: int = 10, side: int = 10) -> np.ndarray:
    m = np.zeros((size, size), dtype=bool)
    m[top : top + side, left : left + side] = True
    return m


def test_shifted_square():
    """A 10x10 square (rows and columns 10-19 of 40x40) against the same square 2 px to the right.

    J = 80 / 120. F, worked by hand: the tolerance is ceil(0.008 x 56.6) = 1 px (a plus-shaped disk).
    seg2bmap puts each square's 40 boundary pixels on its right column and bottom row (inside) and on the
    column left of it and the row above it (outside, corner included). Of the prediction's boundary, 0/10
    of its right column, 9/9 of its bottom row, 4/11 of its left column and 9/10 of its top row have a ground
    truth boundary pixel within 1 px: precision 22/40. Of the ground truth's, 3/10, 9/9, 0/11 and 10/10:
    recall 22/40. F = 0.55."""
    gt, pred = _square(), _square(left=12)
    assert int(seg2bmap(gt).sum()) == int(seg2bmap(pred).sum()) == 40
    assert boundary_radius(gt.shape) == 1
    assert jaccard(gt, pred) == pytest.approx(80 / 120)
    assert f_measure(gt, pred) == pytest.approx(0.55)
    # 15 px away, nothing overlaps and no boundary pixel is within the tolerance
    assert jaccard(gt, _square(left=25)) == 0.0 and f_measure(gt, _square(left=25)) == 0.0


def test_empty_and_perfect_predictions():
    gt = _square()
    empty = np.zeros_like(gt)
    assert jaccard(gt, empty) == 0.0 and f_measure(gt, empty) == 0.0  # boundary recall 0
    assert jaccard(gt, gt) == 1.0 and f_measure(gt, gt) == 1.0
    # an object absent from both: the toolkit scores the frame 1 for both measures
    assert jaccard(empty, empty) == 1.0 and f_measure(empty, empty) == 1.0
    # a prediction where the object is absent: precision 0, F 0
    assert f_measure(empty, gt) == 0.0


def test_disk_is_scikit_images():
    assert disk(1).tolist() == [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    d8 = disk(8)
    assert d8.shape == (17, 17) and d8[8].all() and d8[:, 8].all() and not d8[0, 0] and not d8[1, 3]
    assert boundary_radius((480, 854)) == 8  # DAVIS 480p: ceil(0.008 * 979.7)


def test_decay_of_a_linearly_dropping_sequence():
    values = np.linspace(1.0, 0.0, 21)  # quality drops by 0.05 per frame
    mean, recall, decay = statistics(values)
    assert mean == pytest.approx(0.5)
    assert recall == pytest.approx(10 / 21)  # frames strictly above 0.5
    # the toolkit's bins: edges round(linspace(1, 21, 5)) - 1 = 0, 5, 10, 15, 20, each closed on the right
    assert decay == pytest.approx(np.mean(values[0:6]) - np.mean(values[15:21]))
    assert decay == pytest.approx(0.75)
    assert statistics(np.full(10, 0.7))[2] == 0.0  # constant quality: no decay


def test_decay_on_frames_of_an_evaluated_sequence(tmp_path):
    """End to end: a square that drifts one more pixel each frame gives J falling frame by frame, and a
    positive decay; the same prediction without drift gives decay 0."""
    root, results = tmp_path / "root", tmp_path / "results"
    gt_ids = [_square(60, 20, 20, 20).astype(np.uint8) for _ in range(10)]
    pred_ids = [_square(60, 20, 20 + t, 20).astype(np.uint8) for t in range(10)]
    _write_davis(root, results, {"drift": (gt_ids, pred_ids)})
    seq = davis_eval.evaluate_results(root, results, progress=False).sequences[0]
    j = seq.J[0]
    assert np.all(np.diff(j) < 0)
    assert statistics(j)[2] > 0.3


def test_boundary_f_per_frame_stack():
    gt = np.stack([_square(), _square()])
    pred = np.stack([_square(), np.zeros((40, 40), dtype=bool)])
    assert boundary_f(gt, pred).tolist() == [1.0, 0.0]


# ---------------------------------------------------------------------------------- bad input
def _write_davis(root: Path, results: Path, seqs: dict[str, tuple[list, list]]) -> None:
    for name, (gts, preds) in seqs.items():
        for t, (gt, pred) in enumerate(zip(gts, preds)):
            for folder, ids in ((root / "Annotations" / "480p" / name, gt), (results / name, pred)):
                folder.mkdir(parents=True, exist_ok=True)
                im = Image.fromarray(ids)
                im.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * 759)
                im.save(folder / f"{t:05d}.png")
            frames = root / "JPEGImages" / "480p" / name
            frames.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.zeros((*gt.shape, 3), dtype=np.uint8)).save(frames / f"{t:05d}.jpg")
    (root / "ImageSets" / "2017").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("\n".join(seqs) + "\n")


@pytest.fixture
def small_set(tmp_path):
    root, results = tmp_path / "root", tmp_path / "results"
    gts = [_square().astype(np.uint8) for _ in range(4)]
    _write_davis(root, results, {"one": (gts, [g.copy() for g in gts])})
    return root, results


def test_missing_prediction_is_a_one_line_error_naming_the_file(small_set):
    root, results = small_set
    (results / "one" / "00002.png").unlink()
    with pytest.raises(DatasetError, match=r"one/00002\.png: file not found") as e:
        davis_eval.evaluate_results(root, results, progress=False)
    assert "\n" not in str(e.value)


def test_an_id_above_the_objects_is_an_error(small_set):
    root, results = small_set
    Image.fromarray((_square() * 2).astype(np.uint8)).convert("P").save(results / "one" / "00001.png")
    with pytest.raises(DatasetError, match=r"00001\.png: id 2 is higher than the number of objects \(1\)"):
        davis_eval.evaluate_results(root, results, progress=False)


def test_rgb_or_wrongly_sized_predictions_are_errors(small_set):
    root, results = small_set
    Image.fromarray(np.zeros((40, 40, 3), dtype=np.uint8)).save(results / "one" / "00001.png")
    with pytest.raises(DatasetError, match=r"00001\.png: image mode 'RGB'"):
        davis_eval.evaluate_results(root, results, progress=False)
    Image.fromarray(np.zeros((20, 40), dtype=np.uint8)).save(results / "one" / "00001.png")
    with pytest.raises(DatasetError, match=r"00001\.png: size \(40, 20\) \(WxH\), annotation is \(40, 40\)"):
        davis_eval.evaluate_results(root, results, progress=False)


def test_command_line_error_is_one_line(small_set, capsys):
    root, results = small_set
    shutil.rmtree(results / "one")
    with pytest.raises(SystemExit) as e:
        davis_eval.main(["--davis-root", str(root), "--results", str(results), "--no-progress"])
    assert str(e.value).startswith("error: ") and "00001.png: file not found" in str(e.value)
    assert "\n" not in str(e.value)
