"""The real-data loaders on SynthScenes: round trips through mmseg / mmdet pipelines and the DAVIS reader
recover exactly what the generator drew, and every kind of broken input gives a one-line DatasetError."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from downstream.datasets import (
    DatasetError,
    DavisDataset,
    ImageFolderDataset,
    check_ade20k_root,
    check_coco_root,
    check_data_root,
    check_davis_root,
    check_imagenet_root,
    read_captions,
    write_indexed_png,
)
from synthscenes.layouts import ade20k as ade20k_layout
from synthscenes.layouts import coco as coco_layout
from synthscenes.layouts import davis as davis_layout
from synthscenes.layouts import imagenet as imagenet_layout
from synthscenes.shapes import SHAPES
from tests.synthscenes_helpers import copy_layout, small_dataset

# Built in the library's default scope (``library_scope``), as its configs are.
SEG_PIPELINE = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations"),
    dict(type="PackSegInputs"),
]
DET_PIPELINE = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
    dict(type="PackDetInputs"),
]


def assert_one_line_error(excinfo: pytest.ExceptionInfo, path: object, *fragments: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message
    assert str(path) in message and "expected" in message, message
    for fragment in fragments:
        assert fragment in message, message


def break_image(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:40])  # a truncated file: the header survives, the pixels do not


def library_scope(scope: str):
    """Build in ``scope``: an mmengine Runner that ran earlier in this process (the dense protocols' tests)
    leaves its own default scope behind, and the datasets' pipelines are built in the current one."""
    from mmengine.registry import DefaultScope

    return DefaultScope.overwrite_default_scope(scope)


def seg_dataset(root: Path, split: str = "validation", **kwargs):
    from mmseg.registry import DATASETS

    import downstream.datasets.ade20k  # noqa: F401  (registers the dataset classes)

    cfg = dict(
        type="SynthScenesSegDataset",
        data_root=str(root),
        data_prefix=dict(img_path=f"images/{split}", seg_map_path=f"annotations/{split}"),
        pipeline=SEG_PIPELINE,
        **kwargs,
    )
    with library_scope("mmseg"):
        return DATASETS.build(cfg)


def det_dataset(root: Path, split: str = "val2017", dataset_type: str = "SynthScenesCocoDataset", **kwargs):
    from mmdet.registry import DATASETS

    import downstream.datasets.coco  # noqa: F401  (registers the dataset classes)

    cfg = dict(
        type=dataset_type,
        data_root=str(root),
        ann_file=f"annotations/instances_{split}.json",
        data_prefix=dict(img=f"{split}/"),
        pipeline=DET_PIPELINE,
        test_mode=True,
        **kwargs,
    )
    with library_scope("mmdet"):
        return DATASETS.build(cfg)


# ------------------------------------------------------------------------------------------- ImageNet
def test_class_folders_round_trip_labels_index_and_captions():
    root, cfg, _ = small_dataset()
    dataset = ImageFolderDataset(root / "imagenet", "train", transform=lambda im: np.asarray(im))
    assert dataset.classes == list(SHAPES) and len(dataset) == cfg.imagenet.train
    captions = dict(read_captions(root / "imagenet", "train"))
    for position in range(len(dataset)):
        pixels, label, index = dataset[position]
        path = dataset.samples[position][0]
        item = int(path.stem.rsplit("_", 1)[1])
        scene, rendered, text = imagenet_layout.draw_item(cfg, "train", item)
        assert index == position and label == scene.label
        assert np.array_equal(pixels, rendered.image), "PNG is lossless"
        assert captions[path] == text
    assert check_imagenet_root(root / "imagenet", full=True) == {"train": 16, "val": 8}


def test_class_folders_accept_imagenet_extensions(tmp_path):
    split = tmp_path / "train"
    for name, ext in (("a", ".JPEG"), ("b", ".jpg"), ("c", ".png")):
        (split / name).mkdir(parents=True)
        Image.new("RGB", (8, 8), "red").save(
            split / name / f"x{ext}", format="PNG" if ext == ".png" else "JPEG"
        )
    dataset = ImageFolderDataset(tmp_path, "train")
    assert dataset.classes == ["a", "b", "c"] and dataset.targets == [0, 1, 2]
    image, _, _ = dataset[0]
    assert image.mode == "RGB"


def test_class_folders_missing_split(tmp_path):
    with pytest.raises(DatasetError) as excinfo:
        ImageFolderDataset(tmp_path, "train")
    assert_one_line_error(excinfo, tmp_path / "train", "missing folder")


def test_class_folders_empty_class(tmp_path):
    root = copy_layout("imagenet", tmp_path)
    for path in (root / "val" / "star").iterdir():
        path.unlink()
    with pytest.raises(DatasetError) as excinfo:
        ImageFolderDataset(root, "val")
    assert_one_line_error(excinfo, root / "val" / "star", "empty class")


def test_class_folders_differ_between_splits(tmp_path):
    root = copy_layout("imagenet", tmp_path)
    (root / "val" / "blob").mkdir()
    (root / "val" / "blob" / "x.png").write_bytes((next((root / "val" / "star").iterdir())).read_bytes())
    with pytest.raises(DatasetError, match="class folders differ"):
        check_imagenet_root(root)


def test_class_folders_corrupt_image_is_named_then_skipped_and_counted(tmp_path):
    root = copy_layout("imagenet", tmp_path)
    victim = sorted((root / "train" / "ring").iterdir())[0]
    break_image(victim)
    dataset = ImageFolderDataset(root, "train")
    position = [path for path, _ in dataset.samples].index(victim)
    with pytest.raises(DatasetError) as excinfo:
        dataset[position]
    assert_one_line_error(excinfo, victim, "corrupt")
    with pytest.raises(DatasetError):
        check_imagenet_root(root, full=True)
    skipping = ImageFolderDataset(root, "train", skip_corrupt=True)
    assert skipping.num_skipped == 1 and skipping.skipped == [victim] and len(skipping) == len(dataset) - 1
    assert all(skipping[i][1] == skipping.samples[i][1] for i in range(len(skipping)))


def test_captions_missing_or_listing_a_missing_image(tmp_path):
    root = copy_layout("imagenet", tmp_path)
    first = read_captions(root, "val")[0][0]
    first.unlink()
    with pytest.raises(DatasetError) as excinfo:
        read_captions(root, "val")
    assert_one_line_error(excinfo, first, "missing")
    (root / "captions_val.csv").unlink()
    with pytest.raises(DatasetError, match="missing captions file"):
        read_captions(root, "val")


# --------------------------------------------------------------------------------------------- ADE20K
@pytest.mark.parametrize(("split", "generator_split"), [("training", "train"), ("validation", "val")])
def test_mmseg_round_trip_recovers_every_label(split, generator_split):
    root, cfg, _ = small_dataset()
    dataset = seg_dataset(root / "ade20k", split)
    assert dataset.metainfo["classes"] == SHAPES and len(dataset) == cfg.ade20k.count(generator_split)
    for position in range(len(dataset)):
        data = dataset[position]
        item = int(Path(data["data_samples"].seg_map_path).stem.rsplit("_", 1)[1])
        scene, rendered = ade20k_layout.draw_item(cfg, generator_split, item)
        expected = rendered.semantic_map(scene).astype(np.int64) - 1  # reduce_zero_label: k + 1 -> k
        expected[expected < 0] = 255  # background -> ignored, as ADE20K's "other"
        assert np.array_equal(data["data_samples"].gt_sem_seg.data[0].numpy(), expected)
        assert tuple(data["inputs"].shape) == (3, cfg.ade20k.image_size, cfg.ade20k.image_size)
    assert check_ade20k_root(root / "ade20k", split, num_classes=len(SHAPES), full=True) == len(dataset)


def test_mmseg_missing_annotation_folder_and_missing_label(tmp_path):
    root = copy_layout("ade20k", tmp_path)
    label = sorted((root / "annotations" / "validation").iterdir())[0]
    label.unlink()
    with pytest.raises(DatasetError) as excinfo:
        seg_dataset(root)
    assert_one_line_error(excinfo, label, "label map missing")
    for path in (root / "annotations" / "validation").iterdir():
        path.unlink()
    (root / "annotations" / "validation").rmdir()
    with pytest.raises(DatasetError) as excinfo:
        check_ade20k_root(root, "validation")
    assert_one_line_error(excinfo, root / "annotations" / "validation", "missing folder")


def test_mmseg_unknown_label_is_named(tmp_path):
    root = copy_layout("ade20k", tmp_path)
    label = sorted((root / "annotations" / "validation").iterdir())[1]
    labels = np.asarray(Image.open(label)).copy()
    labels[0, 0] = len(SHAPES) + 3
    Image.fromarray(labels).save(label)
    dataset = seg_dataset(root)
    with pytest.raises(DatasetError) as excinfo:
        dataset[1]
    assert_one_line_error(excinfo, label, f"unknown label(s) [{len(SHAPES) + 3}]")
    with pytest.raises(DatasetError) as excinfo:
        check_ade20k_root(root, "validation", num_classes=len(SHAPES), full=True)
    assert_one_line_error(excinfo, label, "unknown label")


def test_mmseg_corrupt_image_is_named_then_skipped_and_counted(tmp_path):
    root = copy_layout("ade20k", tmp_path)
    victim = sorted((root / "images" / "validation").iterdir())[2]
    break_image(victim)
    dataset = seg_dataset(root)
    with pytest.raises(DatasetError) as excinfo:
        dataset[2]
    assert_one_line_error(excinfo, victim, "corrupt")
    skipping = seg_dataset(root, skip_corrupt=True)
    assert (
        skipping.num_skipped == 1 and skipping.skipped == [str(victim)] and len(skipping) == len(dataset) - 1
    )
    assert all(Path(skipping[i]["data_samples"].img_path) != victim for i in range(len(skipping)))


def test_stock_ade20k_refuses_synthscenes_classes_which_is_why_the_subclass_exists():
    from mmseg.datasets import ADE20KDataset

    root, _, _ = small_dataset()
    with pytest.raises(ValueError):
        ADE20KDataset(
            data_root=str(root / "ade20k"),
            data_prefix=dict(img_path="images/validation", seg_map_path="annotations/validation"),
            metainfo=dict(classes=SHAPES),
        )


# ----------------------------------------------------------------------------------------------- COCO
@pytest.mark.parametrize(("split", "generator_split"), [("train2017", "train"), ("val2017", "val")])
def test_mmdet_round_trip_recovers_every_box_mask_and_label(split, generator_split):
    root, cfg, _ = small_dataset()
    dataset = det_dataset(root / "coco", split)
    assert dataset.metainfo["classes"] == SHAPES and dataset.dropped_annotations == 0
    drawn_total = loaded_total = 0
    for position in range(len(dataset)):
        sample = dataset[position]["data_samples"]
        item = int(Path(sample.img_path).stem) - 1
        scene, rendered = coco_layout.draw_item(cfg, generator_split, item)
        masks = rendered.instance_masks()
        gt = sample.gt_instances
        assert len(gt) == len(scene.objects) and len(sample.ignored_instances) == 0
        expected_boxes = []  # from the masks, independently of the writer: pixel x covers [x, x + 1)
        for mask in masks:
            ys, xs = np.nonzero(mask)
            expected_boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        assert np.array_equal(gt.bboxes.tensor.numpy(), np.array(expected_boxes, dtype=np.float32))
        assert gt.labels.tolist() == [o.shape_index for o in scene.objects]
        assert np.array_equal(gt.masks.masks.astype(bool), np.stack(masks))
        drawn_total += len(scene.objects)
        loaded_total += len(gt)
    assert loaded_total == drawn_total > 0
    assert check_coco_root(root / "coco", split, full=True, classes=SHAPES) == len(dataset)


def test_stock_coco_dataset_would_silently_drop_every_synthscenes_annotation():
    # The trap the subclass exists for: COCO's 80 class names match none of the shapes.
    root, _, _ = small_dataset()
    from mmdet.datasets import CocoDataset

    stock = CocoDataset(
        data_root=str(root / "coco"),
        ann_file="annotations/instances_val2017.json",
        data_prefix=dict(img="val2017/"),
        test_mode=True,
    )
    assert sum(len(info["instances"]) for info in stock.load_data_list()) == 0
    with pytest.raises(DatasetError, match="categories lack the dataset's classes"):
        det_dataset(root / "coco", dataset_type="CheckedCocoDataset")


def test_mmdet_json_that_does_not_parse(tmp_path):
    root = copy_layout("coco", tmp_path)
    ann = root / "annotations" / "instances_val2017.json"
    ann.write_text(ann.read_text()[:-20])
    with pytest.raises(DatasetError) as excinfo:
        det_dataset(root)
    assert_one_line_error(excinfo, ann, "not valid JSON")


def coco_with_edited_annotation(tmp_path, index: int, **changes) -> tuple[Path, Path]:
    """A copy of the COCO layout whose val annotation ``index`` has ``changes``: (root, annotation file)."""
    root = copy_layout("coco", tmp_path)
    ann = root / "annotations" / "instances_val2017.json"
    document = json.loads(ann.read_text())
    document["annotations"][index].update(changes)
    ann.write_text(json.dumps(document))
    return root, ann


def test_mmdet_unknown_category_is_named(tmp_path):
    root, ann = coco_with_edited_annotation(tmp_path, 3, category_id=99)
    with pytest.raises(DatasetError) as excinfo:
        det_dataset(root)
    assert_one_line_error(excinfo, ann, "annotation 4 has unknown category_id 99")


def test_mmdet_annotation_missing_a_required_key_is_named_not_a_key_error(tmp_path):
    root = copy_layout("coco", tmp_path)
    ann = root / "annotations" / "instances_val2017.json"
    document = json.loads(ann.read_text())
    del document["annotations"][2]["area"]  # mmdet's parser would raise KeyError('area') mid-load
    ann.write_text(json.dumps(document))
    with pytest.raises(DatasetError) as excinfo:
        det_dataset(root)
    assert_one_line_error(excinfo, ann, "annotations[2] (id 3) lacks required key(s) ['area']")
    with pytest.raises(DatasetError, match="lacks required key"):
        check_coco_root(root, "val2017")


def test_mmdet_degenerate_annotation_is_an_error_not_a_silent_drop(tmp_path):
    root, _ = coco_with_edited_annotation(tmp_path, 0, area=0)
    with pytest.raises(DatasetError, match="1 annotations dropped"):
        det_dataset(root)


def test_mmdet_missing_and_corrupt_images(tmp_path):
    root = copy_layout("coco", tmp_path)
    victim = root / "val2017" / f"{2:012d}.jpg"
    break_image(victim)
    dataset = det_dataset(root)
    position = [Path(dataset.get_data_info(i)["img_path"]) for i in range(len(dataset))].index(victim)
    with pytest.raises(DatasetError) as excinfo:
        dataset[position]
    assert_one_line_error(excinfo, victim, "corrupt")
    skipping = det_dataset(root, skip_corrupt=True)
    assert skipping.num_skipped == 1 and len(skipping) == len(dataset) - 1
    victim.unlink()
    with pytest.raises(DatasetError) as excinfo:
        det_dataset(root)
    assert_one_line_error(excinfo, victim, "missing")


# ---------------------------------------------------------------------------------------------- DAVIS
def test_davis_reader_recovers_every_id_and_frame_count():
    root, cfg, _ = small_dataset()
    for split, count in (("train", cfg.davis.train), ("val", cfg.davis.val)):
        dataset = DavisDataset(root / "davis", split)
        assert dataset.names == [davis_layout.sequence_name(split, i) for i in range(count)]
        for index, seq in enumerate(dataset):
            clip, renderings = davis_layout.draw_item(cfg, split, index)
            expected = np.stack([clip.id_map(r.instance_map) for r in renderings])
            assert seq.num_objects == len(clip.object_ids)
            assert np.array_equal(seq.masks(), expected)
            assert seq.frames().shape == (cfg.davis.frames, cfg.davis.image_size, cfg.davis.image_size, 3)
    assert dataset.palette()[:6] == [0, 0, 0, 128, 0, 0]
    assert check_davis_root(root / "davis", "val", full=True) == cfg.davis.val * cfg.davis.frames


def test_davis_prediction_png_round_trips(tmp_path):
    root, _, _ = small_dataset()
    dataset = DavisDataset(root / "davis")
    ids = dataset[0].first_mask()
    write_indexed_png(tmp_path / "p" / "00000.png", ids, dataset.palette())
    with Image.open(tmp_path / "p" / "00000.png") as image:
        assert image.mode == "P" and np.array_equal(np.asarray(image), ids)


def test_davis_missing_sequence_list(tmp_path):
    root = copy_layout("davis", tmp_path)
    (root / "ImageSets" / "2017" / "val.txt").unlink()
    with pytest.raises(DatasetError) as excinfo:
        DavisDataset(root, "val")
    assert_one_line_error(excinfo, root / "ImageSets" / "2017" / "val.txt", "missing sequence list")


def test_davis_unknown_id_in_a_later_frame(tmp_path):
    root = copy_layout("davis", tmp_path)
    mask_path = root / "Annotations" / "480p" / "ss-val-001" / "00003.png"
    with Image.open(mask_path) as image:
        ids, palette = np.asarray(image).copy(), image.getpalette()
    ids[0, 0] = 9
    write_indexed_png(mask_path, ids, palette)
    dataset = DavisDataset(root, "val")  # the layout is fine; the bad id shows when masks are read
    with pytest.raises(DatasetError) as excinfo:
        dataset[1].masks()
    assert_one_line_error(excinfo, mask_path, "unknown object id(s) [9]")
    skipping = DavisDataset(root, "val", skip_corrupt=True)
    assert skipping.names == ["ss-val-000"] and skipping.skipped_sequences == ["ss-val-001"]
    assert skipping.num_skipped == 1


def test_davis_first_frame_must_hold_ids_one_to_k_in_palette_mode(tmp_path):
    root = copy_layout("davis", tmp_path)
    first = root / "Annotations" / "480p" / "ss-val-000" / "00000.png"
    with Image.open(first) as image:
        ids, palette = np.asarray(image).copy(), image.getpalette()
    ids[ids == 1] = 0  # object 1 vanishes from the first frame
    write_indexed_png(first, ids, palette)
    with pytest.raises(DatasetError) as excinfo:
        DavisDataset(root, "val")
    assert_one_line_error(excinfo, first, "are not 1..K")
    Image.fromarray(ids).convert("RGB").save(first)
    with pytest.raises(DatasetError) as excinfo:
        DavisDataset(root, "val")
    assert_one_line_error(excinfo, first, "not 'P'")


def test_davis_corrupt_frame_is_named_then_skipped(tmp_path):
    root = copy_layout("davis", tmp_path)
    frame = root / "JPEGImages" / "480p" / "ss-val-000" / "00002.jpg"
    break_image(frame)
    with pytest.raises(DatasetError) as excinfo:
        DavisDataset(root, "val")[0].frames()
    assert_one_line_error(excinfo, frame, "corrupt")
    skipping = DavisDataset(root, "val", skip_corrupt=True)
    assert skipping.skipped == [frame] and skipping.names == ["ss-val-001"]


# ----------------------------------------------------------------------------------------- whole root
def test_check_data_root_passes_on_the_generated_dataset_and_names_a_problem(tmp_path):
    root, cfg, _ = small_dataset()
    counts = check_data_root(root, full=True)
    assert counts["imagenet"] == {"train": cfg.imagenet.train, "val": cfg.imagenet.val}
    assert counts["coco"] == {"train2017": cfg.coco.train, "val2017": cfg.coco.val}
    with pytest.raises(DatasetError) as excinfo:
        check_data_root(tmp_path / "nothing")
    assert_one_line_error(excinfo, tmp_path / "nothing", "missing data root")


def test_dataset_error_keeps_its_type_through_mmengine_registry_builds(tmp_path):
    with pytest.raises(DatasetError) as excinfo:
        seg_dataset(tmp_path / "absent")
    assert "\n" not in str(excinfo.value) and "missing folder" in str(excinfo.value)


def test_checked_real_dataset_classes_keep_the_stock_class_lists():
    from mmseg.registry import DATASETS as SEG_DATASETS

    import downstream.datasets.ade20k  # noqa: F401

    root, cfg, _ = small_dataset()
    with library_scope("mmseg"):
        ade = SEG_DATASETS.build(
            dict(
                type="CheckedADE20KDataset",
                data_root=str(root / "ade20k"),
                data_prefix=dict(img_path="images/validation", seg_map_path="annotations/validation"),
                pipeline=SEG_PIPELINE,
            )
        )
    assert len(ade.metainfo["classes"]) == 150 and len(ade) == cfg.ade20k.val
    assert set(ade[0]["data_samples"].gt_sem_seg.data.unique().tolist()) <= set(range(len(SHAPES))) | {255}
