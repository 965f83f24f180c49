"""reproduce/clip_teacher_training.py and clip_teacher_files.py: the small CLIP teacher trained on SynthScenes
captions (a few steps on the test dataset), its records and reuse, and what pretraining gets from it (the
teacher's cost in the record)."""

from __future__ import annotations

from pathlib import Path

import pytest

from methods.clip_teacher import build_random_clip, load_clip, read_clip_meta, save_clip
from reproduce import clip_teacher_files as teachers
from reproduce import clip_teacher_training as training
from reproduce import pretrain
from reproduce.budget import load_budget
from reproduce.data_root import DataRoot
from tables.records import read_record, record_path
from tests.synthscenes_helpers import small_dataset

pytestmark = pytest.mark.filterwarnings("ignore:CMT-MAE built with a RANDOMLY")

# The golden traces' teacher recipe (tests/golden/budget.py: 2 epochs of batch 8 on the test dataset) at half
# its lr: a teacher that trains in a few steps, from a setting the tests own (no real budget moves it).
RECIPE = {**load_budget(str(Path(__file__).parent / "golden" / "budget.py")).clip_teacher, "lr": 1e-3}


def small_cfg(**recipe):
    cfg = load_budget("micro")
    cfg.clip_teacher = {**RECIPE, **recipe}
    cfg.linear_probe.batch_size = 8
    cfg.linear_probe.epochs = 3
    cfg.linear_probe.warmup_epochs = 1
    return cfg


@pytest.fixture(scope="module")
def data():
    root, _, manifest = small_dataset()
    return DataRoot(root, manifest["sha256"])


@pytest.fixture(scope="module")
def built(data, tmp_path_factory):
    from downstream.in1k.linear_probe import single_thread

    work = tmp_path_factory.mktemp("teacher")
    with single_thread():  # restored afterwards: later tests compare in-process runs with CLI runs bitwise
        teacher = teachers.ensure_teacher(small_cfg(), work, data=data, probe_seeds=(0, 1), progress=False)
    return work, teacher


def test_the_salient_caption_names_the_first_object_without_its_colour():
    assert training.salient_caption("a cyan square, an orange circle and a purple cross on a gradient") == (
        "a square"
    )
    assert training.salient_caption("an orange ellipse and a red ring on noise") == "an ellipse"
    assert training.prompts_for("ellipse")[:3] == ["an ellipse", "a red ellipse", "an orange ellipse"]


def test_synthscenes_captions_name_the_class_first():
    from synthscenes.config import load_config
    from synthscenes.layouts.imagenet import draw_item
    from synthscenes.shapes import SHAPES

    cfg = load_config(small_cfg().data)
    for i in range(16):
        scene, _, text = draw_item(cfg, "train", i)
        assert training.salient_caption(text).split()[-1] == SHAPES[scene.label], text


def test_the_teacher_trains_and_is_recorded_with_its_cost_zero_shot_and_probe(built, data):
    work, teacher = built
    rec = read_record(teacher.record)
    assert rec.method == teachers.TEACHER_METHOD and rec.protocol == teachers.TEACHER_PROTOCOL
    assert {"zero_shot_top1", "zero_shot_top5", "linear_probe_top1", "chance_top1"} <= rec.metrics.keys()
    assert rec.metrics["chance_top1"] == 12.5
    cost = rec.cost
    assert cost["steps"] == 2 * (16 // 8) and cost["train_images"] == 32
    assert cost["flops_per_image"] > 0 and cost["total_flops"] == pytest.approx(cost["flops_per_image"] * 32)
    assert cost["wall_s"] > 0
    assert rec.provenance["dataset_manifest_hash"] == data.manifest_hash
    # the file: the project's format, read with weights_only, the teacher's key and cost in its meta
    model, meta = load_clip(teacher.path)
    assert meta["teacher_key"] == teacher.key and meta["cost"]["total_flops"] == cost["total_flops"]
    assert model.visual.grid_size == (8, 8)
    # one linear-probe record per probe seed: the teacher's reference row in Table 1
    for seed in (0, 1):
        probe = read_record(record_path(work, "micro", teachers.TEACHER_METHOD, "linear_probe", seed, 0))
        assert 0 <= probe.metrics["top1"] <= 100 and probe.pretrain_seed == 0
    assert rec.extra["linear_probe_top1_per_seed"] == [
        read_record(record_path(work, "micro", teachers.TEACHER_METHOD, "linear_probe", s, 0)).metrics["top1"]
        for s in (0, 1)
    ]


def test_a_teacher_is_reused_only_with_the_same_key(built, data, monkeypatch):
    work, teacher = built

    def no_training(*args, **kwargs):
        raise AssertionError("retrained")

    monkeypatch.setattr(teachers, "train_clip", no_training)
    again = teachers.ensure_teacher(small_cfg(), work, data=data, progress=False)
    assert again.path == teacher.path and again.key == teacher.key
    changed = small_cfg(lr=2e-3)
    assert teachers.teacher_key(changed, data.manifest_hash) != teacher.key
    with pytest.raises(AssertionError, match="retrained"):
        teachers.ensure_teacher(changed, work, data=data, progress=False)


def test_paper_scale_without_the_openai_file_stops_with_one_line(tmp_path):
    cfg = load_budget("base-300e")
    missing = tmp_path / "nowhere" / "ViT-B-16.pt"
    with pytest.raises(teachers.TeacherError) as err:
        teachers.teacher_inputs("cmtmae", cfg, {"teacher_file": str(missing)}, tmp_path)
    message = str(err.value)
    assert "\n" not in message
    assert "ViT-B-16.pt" in message and str(missing) in message and teachers.OPENAI_VIT_B16_URL in message
    assert teachers.teacher_inputs("mae", cfg, {}, tmp_path) is None  # methods without a teacher: nothing
    # no file named: the default place under the repository
    with pytest.raises(teachers.TeacherError, match=r"checkpoints/clip/ViT-B-16\.pt"):
        teachers.teacher_inputs("cmtmae", cfg, {"teacher_file": None}, tmp_path)


@pytest.mark.e2e
def test_pretraining_uses_the_teacher_and_records_its_cost(tmp_path, monkeypatch):
    """Two CMT-MAE steps on micro with a stand-in teacher file: the model loads it, the pretraining record
    carries its cost (Table 1's Teacher training column) and the teacher's key is part of the run key."""
    clip_name = f"synthclip-{load_budget('micro').model.arch}"  # the budget's teacher architecture
    path = save_clip(
        build_random_clip(clip_name),
        tmp_path / "stand-in.pt",
        {"model_cfg": teachers.clip_model_cfg(clip_name), "teacher_key": "k1", "cost": _COST},
    )
    calls = []

    def stand_in(cfg, work_root, data=None, **kwargs):
        calls.append(Path(work_root))
        return teachers.Teacher(path, "k1")

    monkeypatch.setattr(teachers, "ensure_teacher", stand_in)
    args = ["--method", "cmtmae", "--budget", "micro", "--max-steps", "2", "--work-root", str(tmp_path)]
    result = pretrain.main(args)
    rec = read_record(result.record)
    assert calls == [tmp_path]
    assert rec.cost["teacher_total_flops"] == _COST["total_flops"]
    assert rec.cost["teacher_flops_per_image"] == _COST["flops_per_image"]
    assert rec.cost["teacher_wall_s"] == _COST["wall_s"]
    assert rec.extra["teacher"]["file"] == str(path) and rec.extra["teacher"]["teacher_key"] == "k1"
    assert read_clip_meta(path)["teacher_key"] == "k1"
    # the teacher's flops are in the step's cost (two extra forwards): more than MAE's step
    mae = read_record(pretrain.main([*args[:1], "mae", *args[2:]]).record)
    assert rec.cost["flops_per_image"] > 2 * mae.cost["flops_per_image"]


_COST = {"flops_per_image": 1.5e8, "total_flops": 3.0e12, "wall_s": 12.0, "train_images": 20000}
