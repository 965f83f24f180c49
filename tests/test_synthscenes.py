"""SynthScenes: scene invariants, determinism, the manifest, safe (re)generation, budgets and the CLI."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from synthscenes.appearance import BACKGROUNDS, COLOUR_NAMES, voc_palette
from synthscenes.config import load_config
from synthscenes.files import item_rng
from synthscenes.generate import ensure, generate
from synthscenes.layouts import imagenet as imagenet_layout
from synthscenes.manifest import MANIFEST_NAME, read_manifest, verify
from synthscenes.scene import SMALLER_RATIO, caption, render_scene, sample_scene
from synthscenes.shapes import SHAPES, rasterize
from synthscenes.video import sample_clip
from tests.synthscenes_helpers import SMALL_DATA, small_config, small_dataset

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------------------- scenes
def test_every_shape_rasterizes_inside_its_circumcircle():
    for shape in SHAPES:
        mask = rasterize(shape, 32, 32, 20, 0.3, 64)
        ys, xs = np.nonzero(mask)
        assert mask.sum() > 200, shape
        assert ((xs - 32) ** 2 + (ys - 32) ** 2).max() <= 22**2, shape  # PIL fills edge pixels too
    ring = rasterize("ring", 32, 32, 20, 0.0, 64)
    assert not ring[32, 32], "the ring has a hole"


def test_classification_label_is_the_largest_object_and_clearly_so():
    cfg = small_config()
    for index in range(40):
        scene, _, _ = imagenet_layout.draw_item(cfg, "train", index)
        radii = sorted(o.radius for o in scene.objects)
        largest = max(scene.objects, key=lambda o: o.radius)
        assert SHAPES[scene.label] == largest.shape == SHAPES[index % len(SHAPES)]
        assert radii[-2] <= SMALLER_RATIO * radii[-1] + 1e-9
        assert 2 <= len(scene.objects) <= 4


def test_annotations_come_from_the_same_pixels():
    rng = np.random.default_rng(3)
    scene = sample_scene(rng, 48, (3, 5), (0.1, 0.3))
    rendered = render_scene(scene)
    semantic = rendered.semantic_map(scene)
    masks = rendered.instance_masks()
    assert len(masks) == len(scene.objects)
    for obj, mask in zip(scene.objects, masks):
        assert mask.sum() > 0  # every object stays visible
        assert (semantic[mask] == obj.shape_index + 1).all()
    assert (semantic[rendered.instance_map == 0] == 0).all()
    assert rendered.image.shape == (48, 48, 3) and rendered.image.dtype == np.uint8


def test_captions_name_every_object_largest_first_without_sizes():
    cfg = small_config()
    for index in range(64):
        scene, _, text = imagenet_layout.draw_item(cfg, "train", index)
        assert not re.search(r"\b(large|larger|largest|small|smaller|big|biggest|tiny|huge)\b", text), text
        assert text.endswith(f"on {BACKGROUNDS[scene.background]}")
        words = [w.strip(",") for w in text.split()]
        named = [w for w in words if w in SHAPES]
        by_size = sorted(scene.objects, key=lambda o: -o.radius)
        assert named == [o.shape for o in by_size], text  # salience order: the class is named first
        for obj in scene.objects:
            assert f"{obj.colour} {obj.shape}" in text
        assert named[0] == SHAPES[scene.label]
        assert sum(w in COLOUR_NAMES for w in words) == len(scene.objects)


def test_the_caption_does_not_depend_on_the_rng():
    scene = sample_scene(np.random.default_rng(0), 32, (4, 4), (0.1, 0.2))
    assert len({caption(scene, np.random.default_rng(seed)) for seed in range(5)}) == 1


def test_video_ids_are_stable_and_all_present_in_the_first_frame():
    clip = sample_clip(np.random.default_rng(5), 48, 12, (2, 3), (0.12, 0.24))
    k = len(clip.object_ids)
    assert sorted(clip.object_ids) == list(range(1, k + 1))
    id_maps = [clip.id_map(render_scene(scene).instance_map) for scene in clip.frames]
    assert set(np.unique(id_maps[0])) == set(range(k + 1))
    for ids in id_maps:
        assert set(np.unique(ids)) <= set(range(k + 1))
    centroids = [np.argwhere(ids == clip.object_ids[0]).mean(axis=0) for ids in (id_maps[0], id_maps[-1])]
    assert np.abs(centroids[0] - centroids[1]).max() > 1.0, "objects move"
    assert clip.frames[0].objects[0].angle != clip.frames[-1].objects[0].angle, "objects rotate"


@pytest.mark.parametrize("seed", range(4))
def test_lookalike_clips_share_one_colour_and_leave_distractors_unannotated(seed):
    clip = sample_clip(np.random.default_rng(seed), 64, 8, (2, 3), (0.12, 0.24), True, (1, 2))
    first = clip.frames[0].objects
    assert len({(o.colour, o.rgb, o.shading) for o in first}) == 1, "colour tells no object apart"
    k = clip.num_tracked
    assert 2 <= k <= 3 and 1 <= len(first) - k <= 2
    assert sorted(i for i in clip.object_ids if i) == list(range(1, k + 1))
    ids = clip.id_map(render_scene(clip.frames[0]).instance_map)
    assert set(np.unique(ids)) == set(range(k + 1)), "every tracked object is in the first frame"
    distractor = clip.object_ids.index(0)
    drawn = render_scene(clip.frames[0]).instance_map == distractor + 1
    assert drawn.any() and (ids[drawn] == 0).all(), "a distractor is drawn and annotated as background"


def test_lookalike_keys_are_video_only_and_leave_older_datasets_as_they_were():
    data = {**SMALL_DATA, "davis": {**SMALL_DATA["davis"], "lookalike": True, "distractors": (1, 2)}}
    assert load_config(data).fingerprint_hash() != load_config(SMALL_DATA).fingerprint_hash()
    assert "lookalike" not in json.dumps(load_config(SMALL_DATA).fingerprint()), (
        "unset: not in the fingerprint"
    )
    with pytest.raises(ValueError, match=r"data\.coco: lookalike and distractors"):
        load_config({**SMALL_DATA, "coco": {**SMALL_DATA["coco"], "lookalike": True}})


def test_a_shape_subset_draws_only_those_types_and_leaves_older_datasets_as_they_were():
    from synthscenes.layouts import coco as coco_layout

    subset = ("circle", "cross", "triangle")
    cfg = load_config({**SMALL_DATA, "coco": {**SMALL_DATA["coco"], "shapes": list(subset)}})
    drawn = {o.shape for i in range(40) for o in coco_layout.draw_item(cfg, "train", i)[0].objects}
    assert drawn == set(subset), "every type of the subset occurs, and no other"
    assert cfg.fingerprint_hash() != load_config(SMALL_DATA).fingerprint_hash()
    assert "shapes" not in json.dumps(load_config(SMALL_DATA).fingerprint()), "unset: not in the fingerprint"
    all_types = {
        o.shape for i in range(40) for o in coco_layout.draw_item(small_config(), "train", i)[0].objects
    }
    assert len(all_types) > len(subset)
    for layout, value, message in [
        ("imagenet", ["circle"], r"data\.imagenet\.shapes: a key of the ade20k and coco layouts only"),
        ("coco", ["circle", "blob"], r"data\.coco\.shapes: expected distinct shape names"),
        ("coco", ["circle", "circle"], r"data\.coco\.shapes: expected distinct shape names"),
        ("coco", [], r"data\.coco\.shapes: expected distinct shape names"),
    ]:
        with pytest.raises(ValueError, match=message):
            load_config({**SMALL_DATA, layout: {**SMALL_DATA[layout], "shapes": value}})


def test_voc_palette_matches_the_known_davis_colours():
    palette = voc_palette()
    assert len(palette) == 768
    assert palette[:12] == [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0]
    assert palette[8 * 3 : 8 * 3 + 3] == [64, 0, 0]


# ---------------------------------------------------------------------------------------------- config
def test_config_rejects_unknown_keys_and_single_object_classification():
    with pytest.raises(ValueError, match="unknown keys"):
        load_config({**SMALL_DATA, "imagenet": {**SMALL_DATA["imagenet"], "imgsize": 3}})
    with pytest.raises(ValueError, match="captions would give the label away"):
        load_config({**SMALL_DATA, "imagenet": {**SMALL_DATA["imagenet"], "objects": (1, 3)}})
    with pytest.raises(ValueError, match="missing keys"):
        load_config({"seed": 0})


@pytest.mark.parametrize(
    ("budget", "size", "train", "val"), [("micro", 64, 8192, 2048), ("tiny", 64, 8192, 2048)]
)
def test_budgets_hold_synthscenes_data_with_the_calibrated_sizes(budget, size, train, val):
    from reproduce.data import budget_config

    data = budget_config(budget)  # the budget's data section, validated by the generator's loader
    assert (data.imagenet.image_size, data.imagenet.train, data.imagenet.val) == (size, train, val)
    assert Path(data.root) == REPO / "data" / f"synthscenes-{budget}"
    assert data.davis.frames == 16 and data.davis.val >= 4
    assert data.coco.image_size >= 64


# -------------------------------------------------------------------------------- determinism, manifest
def _file_hashes(manifest: dict) -> dict:
    return manifest["files"]


def test_same_seed_same_bytes_in_any_process_count_and_other_seed_differs(tmp_path):
    _, cfg, manifest = small_dataset()
    again = generate(cfg, tmp_path / "again", workers=2)
    assert again["sha256"] == manifest["sha256"]
    assert _file_hashes(again) == _file_hashes(manifest)
    other = generate(small_config(seed=8), tmp_path / "other", workers=1)
    assert other["sha256"] != manifest["sha256"]
    assert set(other["files"]) == set(manifest["files"])  # same layout, different content


def test_manifest_lists_every_file_with_its_hash_and_every_split():
    root, _, manifest = small_dataset()
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {MANIFEST_NAME}
    assert set(manifest["files"]) == on_disk
    assert set(manifest["splits"]) == {
        "imagenet/train", "imagenet/val", "ade20k/training", "ade20k/validation",
        "coco/train2017", "coco/val2017", "davis/train", "davis/val",
    }  # fmt: skip
    assert sum(s["files"] for s in manifest["splits"].values()) == len(on_disk)
    assert verify(root, manifest) == []
    assert read_manifest(root)["sha256"] == manifest["sha256"]


def test_layout_file_counts(tmp_path):
    root, cfg, _ = small_dataset()
    assert len(list((root / "imagenet/train").rglob("*.png"))) == cfg.imagenet.train
    assert sorted(p.name for p in (root / "imagenet/train").iterdir()) == sorted(SHAPES)
    assert len(list((root / "ade20k/images/validation").glob("*.jpg"))) == cfg.ade20k.val
    assert len(list((root / "ade20k/annotations/validation").glob("*.png"))) == cfg.ade20k.val
    coco = json.loads((root / "coco/annotations/instances_val2017.json").read_text())
    assert len(coco["images"]) == cfg.coco.val and [c["name"] for c in coco["categories"]] == list(SHAPES)
    assert (root / "davis/ImageSets/2017/val.txt").read_text().split() == ["ss-val-000", "ss-val-001"]
    assert len(list((root / "davis/JPEGImages/480p/ss-val-000").glob("*.jpg"))) == cfg.davis.frames


def test_verify_finds_a_changed_file_and_ensure_regenerates_it(tmp_path):
    _, cfg, manifest = small_dataset()
    root = tmp_path / "data"
    generate(cfg, root, workers=1)
    _, generated = ensure(cfg, root, workers=1)
    assert not generated, "an intact dataset with the same config is reused"
    victim = next(iter(manifest["files"]))
    (root / victim).write_bytes(b"tampered")
    assert verify(root, manifest) == [victim]
    again, generated = ensure(cfg, root, workers=1)
    assert generated and again["sha256"] == manifest["sha256"] and verify(root, again) == []
    _, generated = ensure(small_config(seed=9), root, workers=1)
    assert generated, "another config is not reused"


def test_generate_never_replaces_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(FileExistsError, match="not a SynthScenes dataset"):
        generate(small_config(), tmp_path / "mine", workers=1)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_a_crash_leaves_the_previous_dataset_and_no_partial_one(tmp_path, monkeypatch):
    _, cfg, manifest = small_dataset()
    root = tmp_path / "data"
    generate(cfg, root, workers=1)

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("synthscenes.layouts.davis.write_item", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        generate(small_config(seed=11), root, workers=1)
    assert verify(root, read_manifest(root)) == [] and read_manifest(root)["sha256"] == manifest["sha256"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"], "no staging folder left behind"


def test_item_rng_depends_on_every_coordinate():
    draws = {
        float(item_rng(*key).random())
        for key in [(0, "coco", "train", 0), (1, "coco", "train", 0), (0, "ade20k", "train", 0),
                    (0, "coco", "val", 0), (0, "coco", "train", 1)]
    }  # fmt: skip
    assert len(draws) == 5


# ----------------------------------------------------------------------------------------- CLI, bench
def test_cli_writes_then_reuses(tmp_path, monkeypatch, capsys):
    import reproduce.data as cli

    monkeypatch.setattr(cli, "budget_config", lambda budget, out: load_config(SMALL_DATA, root=str(out)))
    out = tmp_path / "cli"
    assert cli.main(["--budget", "micro", "--out", str(out), "--workers", "1"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("wrote") and small_dataset()[2]["sha256"] in first
    assert cli.main(["--budget", "micro", "--out", str(out), "--workers", "1"]) == 0
    assert capsys.readouterr().out.startswith("up to date")


def test_cli_budget_config_resolves_the_root_under_the_repository():
    import reproduce.data as cli

    cfg = cli.budget_config("micro")
    assert Path(cfg.root) == REPO / "data" / "synthscenes-micro"
    assert Path(cli.budget_config("tiny", "/tmp/x").root) == Path("/tmp/x")


def test_bench_generation_reports_time_and_hash():
    from synthscenes.bench import bench_generation

    result = bench_generation(SMALL_DATA, workers=1)
    assert result["sha256"] == small_dataset()[2]["sha256"]
    assert result["seconds"] > 0 and result["items"] == 16 + 8 + 6 + 4 + 6 + 4 + 1 + 2


def test_generation_is_independent_of_the_output_path(tmp_path):
    _, cfg, manifest = small_dataset()
    moved = tmp_path / "elsewhere" / "deeper"
    assert generate(cfg, moved, workers=1)["sha256"] == manifest["sha256"]
    shutil.rmtree(moved)


def test_every_object_stays_visible_in_every_sampled_scene():
    from synthscenes.scene import MIN_VISIBLE_FRACTION

    for seed in range(60):
        scene = sample_scene(np.random.default_rng(seed), 32, (4, 6), (0.15, 0.35))
        rendered = render_scene(scene)
        for obj, visible in zip(scene.objects, rendered.instance_masks()):
            full = rasterize(obj.shape, obj.cx, obj.cy, obj.radius, obj.angle, 32)
            assert visible.sum() >= MIN_VISIBLE_FRACTION * full.sum() > 0


def test_ensure_dataset_for_a_loaded_budget_and_for_real_data(tmp_path):
    from mmengine.config import Config

    import reproduce.data as cli
    from downstream.datasets import DatasetError

    root, _, manifest = small_dataset()
    budget = Config(dict(data=dict(SMALL_DATA, root=str(tmp_path / "synth")), model=dict()))
    class_root, digest = cli.ensure_dataset(budget, workers=1)
    assert class_root == tmp_path / "synth" / "imagenet" and digest == manifest["sha256"]

    real = Config(dict(data=dict(root=str(root), classification=dict(train="imagenet/train"))))
    class_root, digest = cli.ensure_dataset(real)
    assert class_root == root / "imagenet" and digest.startswith("listing:")
    with pytest.raises(DatasetError, match="pass --data-root"):
        cli.ensure_dataset(Config(dict(data=dict(root=None))))


# The small dataset's hash for each generator version, on the pinned stack (Pillow / zlib / libjpeg). If this
# fails, the generator's output changed: bump GENERATOR_VERSION (so stale copies are regenerated, not reused
# under a hash that no longer matches a fresh generation) and add the new hash here.
GOLDEN_SMALL_HASHES = {
    "2": "4d279499d25250045743e76af01ee53d0d3c72ec89f61753f30efd2339d9d0a9",
    "3": "36770bec8279e701163b7687ee1eb75e77e90bfdbf54ce37110014c335b09ac7",  # captions: largest object first
}


def test_output_bytes_are_pinned_per_generator_version():
    from synthscenes.config import GENERATOR_VERSION

    assert small_dataset()[2]["sha256"] == GOLDEN_SMALL_HASHES.get(GENERATOR_VERSION), (
        "generator output changed: bump synthscenes.config.GENERATOR_VERSION and record the new hash"
    )
