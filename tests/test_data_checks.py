"""The check of a whole data root before any work (downstream/datasets/scan.py, run by
reproduce.data_root.prepare): each kind of bad data is one DatasetError line naming the file, the result is
remembered so that a second run decodes nothing, the run key does not depend on where the data was read
from, and ``--data-root`` on a SynthScenes budget never generates a dataset where it points."""

from __future__ import annotations

import contextvars
import dataclasses
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

from downstream.datasets import scan, write_indexed_png
from downstream.datasets.errors import DatasetError
from downstream.datasets.scan import LAYOUTS, RootSpec, scan_data_root
from reproduce import data_root
from synthscenes.shapes import SHAPES
from tests.golden.traces import BUDGET
from tests.synthscenes_helpers import SMALL_DATA, small_dataset

#: the shared small SynthScenes dataset as its budget reads it
SYNTH = RootSpec(synthscenes=True, ade20k_classes=len(SHAPES), coco_classes=tuple(SHAPES), required=LAYOUTS)

#: the user cache of this test (XDG_CACHE_HOME): the scan keeps its results there, never in a dataset
CACHE: contextvars.ContextVar[Path] = contextvars.ContextVar("cache")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    token = CACHE.set(tmp_path / "cache")
    yield
    CACHE.reset(token)


@pytest.fixture()
def root(tmp_path) -> Path:
    """A private, breakable copy of the small SynthScenes dataset (all four layouts, 84 images and maps)."""
    return Path(shutil.copytree(small_dataset()[0], tmp_path / "data"))


def refusal(root: Path, spec: RootSpec = SYNTH) -> str:
    """The one line ``scan_data_root`` refuses ``root`` with."""
    with pytest.raises(DatasetError) as excinfo:
        scan_data_root(root, spec)
    message = str(excinfo.value)
    assert "\n" not in message and "expected" in message, message
    return message


def truncate(path: Path, fraction: float = 0.7) -> None:
    """Cut a file as an interrupted copy does: the header and most of the pixels survive."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def first(folder: Path, pattern: str = "*") -> Path:
    return sorted(p for p in folder.rglob(pattern) if p.is_file())[0]


def count_decodes(monkeypatch) -> list[str]:
    """Every file the scan decodes (images, label maps, masks), in order."""
    calls: list[str] = []
    real = scan.check_file
    monkeypatch.setattr(scan, "check_file", lambda task: calls.append(task[1]) or real(task))
    return calls


# ------------------------------------------------------------------------------------- what is found
def test_the_generated_dataset_passes_with_every_file_decoded(root, monkeypatch):
    decoded = count_decodes(monkeypatch)
    result = scan_data_root(root, SYNTH)
    cfg = small_dataset()[1]
    assert result.scanned == list(LAYOUTS) and not result.cached
    assert result.counts["imagenet"] == {"train": cfg.imagenet.train, "val": cfg.imagenet.val}
    assert result.counts["ade20k"] == {"training": cfg.ade20k.train, "validation": cfg.ade20k.val}
    every = sorted(str(p) for p in root.rglob("*") if p.suffix in (".png", ".jpg"))
    assert sorted(decoded) == every and result.files == len(every)
    assert result.marker is not None and result.marker.is_relative_to(CACHE.get())
    assert not [p for p in root.rglob("*check*.json")]  # nothing written into the dataset folder


def test_missing_split_folder(root):
    shutil.rmtree(root / "imagenet" / "val")
    assert "imagenet/val: missing folder" in refusal(root)


def test_missing_ade20k_annotation_split(root):
    shutil.rmtree(root / "ade20k" / "annotations" / "validation")
    assert "ade20k/annotations/validation: missing folder" in refusal(root)


def test_empty_class_folder(root):
    for path in (root / "imagenet" / "train" / "star").iterdir():
        path.unlink()
    assert "imagenet/train/star: empty class" in refusal(root)


@pytest.mark.parametrize(
    "folder", ["imagenet/val", "ade20k/images/training", "coco/val2017", "davis/JPEGImages"]
)
def test_truncated_image_is_found_before_any_work(root, folder):
    victim = first(root / folder, "*.*g")
    truncate(victim)
    message = refusal(root)
    assert message.startswith(f"{victim}: corrupt or unreadable image") and "truncated" in message


@pytest.mark.parametrize("split", ["training", "validation"])
def test_a_single_ade20k_label_out_of_range_in_either_split(root, split):
    label = first(root / "ade20k" / "annotations" / split)
    labels = np.asarray(Image.open(label)).copy()
    labels[-1, -1] = len(SHAPES) + 1  # valid on disk: 0 (other), 1..len(SHAPES), 255
    Image.fromarray(labels).save(label)
    message = refusal(root)
    assert message.startswith(f"{label}: unknown label(s) [{len(SHAPES) + 1}]"), message


def test_davis_mask_with_an_unknown_object(root):
    mask = root / "davis" / "Annotations" / "480p" / "ss-val-001" / "00003.png"
    with Image.open(mask) as image:
        ids, palette = np.asarray(image).copy(), image.getpalette()
    ids[0, 0] = 9
    write_indexed_png(mask, ids, palette)
    assert refusal(root).startswith(f"{mask}: unknown object id(s) [9]")


def test_coco_json_that_does_not_parse(root):
    ann = root / "coco" / "annotations" / "instances_train2017.json"
    ann.write_text(ann.read_text()[:-20])
    assert refusal(root).startswith(f"{ann}: not valid JSON")


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("annotations", "bbox"),
        ("annotations", "segmentation"),
        ("images", "file_name"),
        ("categories", "name"),
    ],
)
def test_coco_file_missing_a_required_key(root, section, key):
    ann = root / "coco" / "annotations" / "instances_val2017.json"
    document = json.loads(ann.read_text())
    del document[section][1][key]
    ann.write_text(json.dumps(document))
    message = refusal(root)
    assert message.startswith(f"{ann}: {section}[1]") and f"lacks required key(s) ['{key}']" in message


def test_real_data_requires_imagenet_and_checks_the_other_layouts_only_when_present(root):
    real = RootSpec()  # ADE20K's 150 classes, COCO's own categories
    for layout in ("coco", "davis"):
        shutil.rmtree(root / layout)
    result = scan_data_root(root, real)
    assert result.scanned == ["imagenet", "ade20k"] and result.absent == ["coco", "davis"]
    shutil.rmtree(root / "imagenet")
    assert "imagenet: missing folder" in refusal(root, real)


# ------------------------------------------------------------------------------------------ the cache
def test_a_second_check_of_the_same_files_decodes_nothing(root, monkeypatch):
    decoded = count_decodes(monkeypatch)
    start = time.perf_counter()
    scan_data_root(root, SYNTH, manifest_hash="m1")
    first_s, first_count = time.perf_counter() - start, len(decoded)
    start = time.perf_counter()
    again = scan_data_root(root, SYNTH, manifest_hash="m1")
    again_s = time.perf_counter() - start
    assert len(decoded) == first_count > 50  # nothing decoded the second time
    assert again.cached == list(LAYOUTS) and not again.scanned and again.marker is None
    assert again.counts == scan_data_root(root, SYNTH, manifest_hash="m1").counts
    assert again_s < first_s
    # another manifest, checker version or check parameter is another key: checked again
    assert scan_data_root(root, SYNTH, manifest_hash="m2").scanned == list(LAYOUTS)
    monkeypatch.setattr(scan, "CHECKER_VERSION", scan.CHECKER_VERSION + 1)
    assert scan_data_root(root, SYNTH, manifest_hash="m2").scanned == list(LAYOUTS)
    other = dataclasses.replace(SYNTH, ade20k_classes=150)
    assert scan_data_root(root, other, manifest_hash="m2").scanned == ["ade20k"]


def test_a_file_changed_after_a_passing_check_is_checked_again(root):
    scan_data_root(root, SYNTH)
    victim = first(root / "coco" / "train2017")
    truncate(victim)
    assert refusal(root).startswith(f"{victim}: corrupt")
    # the layouts before it stay remembered; the broken one is never taken for checked
    assert scan_data_root(root, SYNTH, layouts=("imagenet", "ade20k")).cached == ["imagenet", "ade20k"]
    assert refusal(root).startswith(f"{victim}: corrupt")


def test_a_read_only_root_is_checked_and_remembered(root):
    root.chmod(0o555)
    try:
        result = scan_data_root(root, SYNTH)
        assert result.marker is not None and result.marker.is_relative_to(CACHE.get())
        assert scan_data_root(root, SYNTH).cached == list(LAYOUTS)
    finally:
        root.chmod(0o755)


def test_a_large_scan_in_worker_processes_names_the_first_bad_file(root, monkeypatch):
    monkeypatch.setattr(scan, "POOL_MIN_FILES", 1)
    victims = sorted((root / "imagenet" / "val" / "star").iterdir())[:2]
    for victim in victims:
        truncate(victim)
    with pytest.raises(DatasetError) as excinfo:
        scan_data_root(root, SYNTH, workers=2)
    assert str(excinfo.value).startswith(f"{victims[0]}: corrupt")


# ---------------------------------------------------------------------- prepare: before any work
def real_budget(root: Path) -> Config:
    return Config(dict(budget="real-test", data=dict(name="imagenet-subset", root=str(root))))


def test_prepare_refuses_a_bad_real_root_before_any_work_and_remembers_a_good_one(root, monkeypatch):
    data = data_root.prepare(real_budget(root), workers=1)
    assert data.root == root and data.manifest_hash.startswith("listing:")
    assert not [p for p in root.rglob("*check*.json")]
    decoded = count_decodes(monkeypatch)
    data_root.prepare(real_budget(root), workers=1)
    assert decoded == []
    label = first(root / "ade20k" / "annotations" / "validation")
    labels = np.asarray(Image.open(label)).copy()
    labels[0, 0] = 151  # ADE20K: 0..150
    Image.fromarray(labels).save(label)
    with pytest.raises(DatasetError, match=r"unknown label\(s\) \[151\]") as excinfo:
        data_root.prepare(real_budget(root), workers=1)
    assert str(excinfo.value).startswith(str(label))


def test_pretrain_command_line_stops_with_one_line_before_training(root, tmp_path, monkeypatch, capsys):
    from reproduce import cli, pretrain

    budget = tmp_path / "real.py"
    budget.write_text(f"_base_ = [{str(BUDGET)!r}]\ndata = dict(_delete_=True, name='real', root=None)\n")
    victim = first(root / "imagenet" / "train")
    truncate(victim)
    monkeypatch.setattr(pretrain, "Runner", None)  # reaching training would be a TypeError
    argv = ["--method", "mae", "--budget", str(budget), "--data-root", str(root), "--work-dir", str(tmp_path)]
    with pytest.raises(SystemExit) as e:
        cli.run(pretrain.main, argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and err[-1].startswith(f"error: {victim}: corrupt or unreadable image")


# ------------------------------------------------------------ --data-root on a SynthScenes budget
def synth_budget(own_root: Path) -> Config:
    return Config(dict(budget="synth-test", data=dict(SMALL_DATA, root=str(own_root))))


def test_data_root_on_a_synthscenes_budget_never_generates_there(tmp_path):
    cfg = synth_budget(tmp_path / "own")
    missing = tmp_path / "typo" / "data"
    with pytest.raises(DatasetError) as excinfo:
        data_root.prepare(cfg, missing, workers=1)
    message = str(excinfo.value)
    assert message.startswith(f"{missing}: no such folder") and "\n" not in message
    assert "python reproduce/data.py --budget synth-test --out" in message
    assert not (tmp_path / "typo").exists() and not (tmp_path / "own").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="holds no SynthScenes dataset"):
        data_root.prepare(cfg, tmp_path / "empty", workers=1)
    other = Config(dict(budget="synth-test", data=dict(SMALL_DATA, seed=8, root=str(tmp_path / "own"))))
    with pytest.raises(DatasetError, match="of another configuration"):
        data_root.prepare(other, small_dataset()[0], workers=1)
    assert not any((tmp_path / "empty").iterdir())


def test_data_root_holding_the_budgets_dataset_is_read(root, tmp_path):
    data = data_root.prepare(synth_budget(tmp_path / "own"), root, workers=1)
    assert data.root == root and data.manifest_hash == small_dataset()[2]["sha256"]
    assert not (tmp_path / "own").exists()


def test_micro_command_line_with_a_missing_data_root_is_one_line(tmp_path, capsys):
    from reproduce import cli, pretrain

    missing = tmp_path / "nowhere"
    with pytest.raises(SystemExit) as e:
        cli.run(pretrain.main, ["--method", "mae", "--budget", "micro", "--data-root", str(missing)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith(f"error: {missing}: no such folder") and err.count("\n") == 1
    assert not missing.exists()


# ------------------------------------------------------------------------------------------- run key
class _Stop(Exception):
    pass


def test_run_key_depends_on_the_manifest_not_on_the_data_root_path(monkeypatch, tmp_path):
    from reproduce import pretrain
    from reproduce.budget import load_budget

    keys = []

    def spy(config_dump, method, manifest_hash):
        keys.append(real(config_dump, method, manifest_hash))
        raise _Stop

    real = pretrain.run_key
    monkeypatch.setattr(pretrain, "run_key", spy)

    def key(path: str, manifest: str) -> str:
        cfg = load_budget(str(BUDGET))
        cfg.data.root = path
        data = data_root.DataRoot(Path(path), manifest)
        with pytest.raises(_Stop):
            pretrain.pretrain(cfg, "mae", data=data, work_root=tmp_path)
        return keys[-1]

    assert key("/data/a", "sha-1") == key("/elsewhere/b", "sha-1")
    assert key("/data/a", "sha-1") != key("/data/a", "sha-2")


@pytest.mark.e2e  # one 24-step pretraining of the golden setting
def test_identical_data_under_another_root_reuses_the_run(golden_setting, tmp_path, monkeypatch):
    from reproduce import pretrain

    def run(root: Path):
        argv = ["--method", "mae", "--budget", str(BUDGET), "--data-root", str(root)]
        return pretrain.main([*argv, "--work-root", str(tmp_path / "runs"), "--reuse"])

    first_run = run(golden_setting.data.root)
    copy = Path(shutil.copytree(golden_setting.data.root, tmp_path / "copy" / "scenes"))
    monkeypatch.setattr(pretrain, "Runner", None)  # reuse must not build a Runner
    again = run(copy)
    assert again.reused and again.run_key == first_run.run_key and again.encoder == first_run.encoder


@pytest.mark.parametrize("workers", [0, 1], ids=["in process", "in a DataLoader worker"])
def test_a_file_that_stops_reading_mid_run_stops_in_one_line_with_the_last_checkpoint(tmp_path, workers):
    from types import SimpleNamespace

    from torch.utils.data import DataLoader, Dataset

    from downstream.datasets.errors import IMAGENET_LAYOUT
    from downstream.datasets.images import open_rgb
    from reproduce import harness

    gone = tmp_path / "train" / "circle" / "0.jpg"

    class Removed(Dataset):  # the file passed the check, then went away
        def __len__(self) -> int:
            return 1

        def __getitem__(self, i: int):
            return open_rgb(gone, IMAGENET_LAYOUT)

    checkpoint = tmp_path / "iter_40.pth"
    checkpoint.write_bytes(b"saved")
    (tmp_path / "last_checkpoint").write_text(str(checkpoint))
    loader = DataLoader(Removed(), num_workers=workers)
    runner = SimpleNamespace(work_dir=str(tmp_path), iter=41, train=lambda: next(iter(loader)))
    with pytest.raises(DatasetError) as caught:
        harness.train(runner)
    line = str(caught.value)
    assert "\n" not in line and "Traceback" not in line, line
    assert line.startswith(
        f"{gone}: file not found (expected {IMAGENET_LAYOUT}); training stopped at step 42"
    )
    assert line.endswith(
        f"the last good checkpoint is {checkpoint}: fix the file, then run again with --resume"
    )
