"""CMT-MAE: the collaborative map, the masks, alpha's two stages, the loss weights, the frozen teacher and the
momentum student, the attention read from open_clip, and the CLIP checkpoint formats (OpenAI's included)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import methods
from methods.clip_teacher import (
    CLIP_MEAN,
    CLIP_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    CLIPTeacher,
    build_random_clip,
    is_torchscript_archive,
    load_clip,
    save_clip,
)
from methods.cmtmae.model import (
    CMTMAE,
    attention_mask,
    collaborative_map,
    feature_loss,
    renormalise,
    stage_alpha,
)
from methods.masking import num_masked, per_sample_noise

pytestmark = pytest.mark.filterwarnings("ignore:CMT-MAE built with a RANDOMLY")


def build(name: str = "cmtmae", **keys) -> CMTMAE:
    torch.manual_seed(0)
    return methods.build(name, "micro", **keys)


def images(n: int = 4, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def stage2(model: CMTMAE, max_steps: int = 100) -> CMTMAE:
    model.set_progress(step=max_steps - 1, max_steps=max_steps)
    return model


def terms(losses: dict) -> dict:
    return {k: v for k, v in losses.items() if "loss" in k}


# ---- the collaborative map and the masks ---------------------------------------------------------------
def test_collaborative_map_is_the_formula_on_known_inputs():
    a_t = torch.tensor([[1.0, 2.0, 3.0, 4.0], [4.0, 0.0, 0.0, 0.0]])
    a_s = torch.tensor([[0.5, 0.5, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    alpha = 0.3
    expected = torch.tensor(
        [
            [0.7 * 0.1 + 0.3 * 0.5, 0.7 * 0.2 + 0.3 * 0.5, 0.7 * 0.3, 0.7 * 0.4],
            [0.7 * 1.0 + 0.3 * 0.25, 0.3 * 0.25, 0.3 * 0.25, 0.3 * 0.25],
        ]
    )
    got = collaborative_map(a_t, a_s, alpha)
    assert torch.allclose(got, expected, atol=1e-7)
    assert torch.allclose(got.sum(-1), torch.ones(2))
    assert torch.allclose(collaborative_map(a_t, a_s, 0.0), renormalise(a_t))
    assert torch.allclose(collaborative_map(a_t, None, 0.0), renormalise(a_t))
    assert torch.allclose(collaborative_map(a_t, a_s, 1.0), renormalise(a_s))
    with pytest.raises(ValueError, match="student's attention"):
        collaborative_map(a_t, None, 0.5)


@pytest.mark.parametrize("direction", ["keep_high", "mask_high"])
@pytest.mark.parametrize("sampling", ["sample", "topk"])
@pytest.mark.parametrize("ratio", [0.75, 0.5, 0.9])
def test_the_mask_always_has_exactly_the_configured_count(direction, sampling, ratio):
    n_patches, n = 64, num_masked(64, ratio)
    g = torch.Generator().manual_seed(3)
    maps = [
        renormalise(torch.rand(16, n_patches, generator=g)),
        torch.nn.functional.one_hot(torch.arange(16) % n_patches, n_patches).float(),  # all mass on one patch
        torch.full((16, n_patches), 1.0 / n_patches),  # ties everywhere
        renormalise(torch.rand(16, n_patches, generator=g) ** 20),  # very peaked
    ]
    for attn in maps:
        noise = per_sample_noise(0, 5, torch.arange(16), n_patches)
        mask = attention_mask(attn, noise, n, direction, sampling)
        assert mask.dtype == torch.bool and mask.sum(1).tolist() == [n] * 16
    model = build(mask_direction=direction, mask_sampling=sampling)
    for step in (0, 99):
        model.set_progress(step=step, max_steps=100)
        masking = model.sample_mask(images(), torch.arange(4))
        assert masking.mask.sum(1).tolist() == [num_masked(64, 0.75)] * 4


def test_masking_direction_keeps_or_masks_the_high_attention_patches():
    attn = torch.full((200, 64), 0.1 / 63)
    attn[:, 7] = 0.9  # one dominant patch
    noise = per_sample_noise(0, 0, torch.arange(200), 64)
    keep = attention_mask(attn, noise, 48, "keep_high", "sample")
    high = attention_mask(attn, noise, 48, "mask_high", "sample")
    assert keep[:, 7].float().mean() < 0.05  # MILAN: large is keep
    assert high[:, 7].float().mean() > 0.95
    ranked = renormalise(torch.arange(1, 65).float().expand(2, 64))
    top = attention_mask(ranked, noise[:2], 48, "keep_high", "topk")
    assert not top[:, 48:].any() and top[:, :48].all()  # the 16 highest stay visible


def test_sampling_follows_the_map_with_keyed_noise():
    """Gumbel-top-k on the keyed noise: the same (seed, step, id) gives the same mask; the visible patches are
    a weighted draw without replacement (frequencies follow the map)."""
    attn = renormalise(torch.linspace(1, 8, 64).expand(4000, 64).clone())
    noise = per_sample_noise(0, 0, torch.arange(4000), 64)
    visible = ~attention_mask(attn, noise, 63, "keep_high", "sample")  # one visible patch: a single draw
    freq = visible.float().mean(0)
    assert torch.allclose(freq, attn[0], atol=0.012)
    assert torch.equal(attention_mask(attn, noise, 63), attention_mask(attn, noise.clone(), 63))


# ---- alpha: two stages, a pure function of the global step -----------------------------------------------
def test_alpha_switches_at_the_configured_step():
    assert [stage_alpha(s, 100, 0.5, 0.25) for s in (0, 24, 25, 99)] == [0.0, 0.0, 0.5, 0.5]
    assert [stage_alpha(s, 8, 0.5, 0.5) for s in range(8)] == [0.0] * 4 + [0.5] * 4
    ramp = [stage_alpha(s, 10, 0.6, 0.5, "linear") for s in range(10)]
    assert ramp[:5] == [0.0] * 5 and ramp[-1] == pytest.approx(0.6)
    assert all(b > a for a, b in itertools.pairwise(ramp[4:]))
    assert stage_alpha(99, 100, 0.5, 1.0) == 0.0  # stage 1 is the whole run
    model = build(stage1_fraction=0.3)
    seen = []
    for step in range(10):
        model.set_progress(step=step, max_steps=10)
        seen.append(model.alpha())
    assert seen == [0.0] * 3 + [0.5] * 7


def test_alpha_and_masks_survive_a_resume():
    """A run resumed at step k (a new model, the checkpoint's state, progress set by the harness) has the
    alpha, mask and loss of the uninterrupted run: nothing but the step decides them."""
    x, ids = images(), torch.tensor([5, 9, 11, 2])
    run = build(stage1_fraction=0.5)
    run.teacher_momentum = 0.9
    for step in range(6):  # train-free steps: progress and EMA updates only
        run.set_progress(step=step, max_steps=8)
        run.after_train_step()
    resumed = build(stage1_fraction=0.5)
    resumed.load_state_dict(run.state_dict())
    for model in (run, resumed):
        model.set_progress(step=6, max_steps=8)
    assert run.alpha() == resumed.alpha() == 0.5
    assert torch.equal(run.sample_mask(x, ids).mask, resumed.sample_mask(x, ids).mask)
    with torch.no_grad():
        a, b = terms(run.loss(x, sample_ids=ids)), terms(resumed.loss(x, sample_ids=ids))
    assert a.keys() == b.keys() == {"loss_t", "loss_s"} and all(torch.equal(a[k], b[k]) for k in a)


# ---- loss weights ------------------------------------------------------------------------------------------
def test_losses_are_weighted_one_minus_alpha_and_alpha():
    model = stage2(build(alpha=0.3))
    x, ids = images(), torch.arange(4)
    with torch.no_grad():
        losses = model.loss(x, sample_ids=ids)
        g = model.guidance(x)
        mask = model.sample_mask(x, ids, g)
        z = model.decoder.features(model.forward_encoder(x, mask.ids_keep), mask.ids_restore)
        m = mask.mask.float()
        l_t = ((feature_loss(model.head_t(z), g.feat_t) * m).sum() / m.sum()).item()
        l_s = ((feature_loss(model.head_s(z), g.feat_s) * m).sum() / m.sum()).item()
    assert losses["loss_t"].item() == pytest.approx(0.7 * l_t, rel=1e-6)
    assert losses["loss_s"].item() == pytest.approx(0.3 * l_s, rel=1e-6)
    assert float(losses["alpha"]) == pytest.approx(0.3)


def test_alpha_zero_gives_the_student_no_weight_and_masks_from_the_teacher_only():
    x, ids = images(), torch.arange(4)
    model = build()  # stage 1 at step 0: alpha = 0
    model.set_progress(step=0, max_steps=100)
    assert model.alpha() == 0.0
    losses = model.loss(x, sample_ids=ids)
    assert losses["loss_s"].item() == 0.0
    sum(terms(losses).values()).backward()
    assert model.head_s.weight.grad is not None and not model.head_s.weight.grad.any()
    g = model.guidance(x)
    noise = model.mask_noise(x, ids)
    expected = attention_mask(g.attn_t, noise, 48, "keep_high", "sample")
    assert torch.equal(model.sample_mask(x, ids).mask, expected)
    # the student's attention has no say: a different momentum encoder leaves the mask unchanged
    with torch.no_grad():
        for p in model.momentum_encoder.parameters():
            p.add_(torch.randn_like(p))
    assert torch.equal(model.sample_mask(x, ids).mask, expected)
    # ...while in stage 2 it does
    stage2(model)
    assert not torch.equal(model.sample_mask(x, ids).mask, expected)

    only = build("cmtmae-teacher-only")  # alpha = 0 throughout: no student branch at all
    assert methods.method_config("cmtmae-teacher-only")["alpha"] == 0.0
    assert only.momentum_encoder is None and only.head_s is None
    for step in (0, 99):
        only.set_progress(step=step, max_steps=100)
        g = only.guidance(x)
        assert g.attn_s is None
        expected = attention_mask(g.attn_t, only.mask_noise(x, ids), 48)
        assert torch.equal(only.sample_mask(x, ids).mask, expected)
        assert set(terms(only.loss(x, sample_ids=ids))) == {"loss_t"}


# ---- frozen teacher, momentum student ----------------------------------------------------------------------
def test_no_gradient_reaches_the_teacher_or_the_momentum_encoder():
    model = stage2(build())
    model.train()
    assert not model.teacher.training and not model.momentum_encoder.training  # eval mode always
    sum(terms(model.loss(images(), sample_ids=torch.arange(4))).values()).backward()
    frozen = {n: p for n, p in model.named_parameters() if n.startswith(("teacher.", "momentum_encoder."))}
    assert frozen and all(not p.requires_grad and p.grad is None for p in frozen.values())
    trained = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert all(p.grad is not None for p in trained.values())
    assert any(n.startswith("head_t.") for n in trained) and any(n.startswith("head_s.") for n in trained)
    groups = model.param_groups_for_weight_decay(0.05)
    in_groups = {id(p) for g in groups for p in g["params"]}
    assert not in_groups & {id(p) for p in frozen.values()}


def test_momentum_update_is_the_ema_formula():
    model = build()
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(0.1 * torch.randn_like(p))
    old = {k: v.clone() for k, v in model.momentum_encoder.module.state_dict().items()}
    student = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    model.teacher_momentum = 0.9  # the budget's rule sets it; m weighs the OLD momentum encoder
    model.set_progress(step=3, max_steps=10)
    assert model.momentum() == 0.9
    model.after_train_step()
    new = model.momentum_encoder.module.state_dict()
    for k in old:
        assert torch.allclose(new[k], 0.9 * old[k] + 0.1 * student[k], atol=1e-7), k
    assert build(momentum_schedule="constant").momentum() == 0.996  # the paper-style default
    cosine = build(momentum_schedule="cosine")
    cosine.set_progress(step=10, max_steps=10)
    assert cosine.momentum() == pytest.approx(1.0)


def test_the_momentum_encoder_starts_as_the_student_and_export_picks_one():
    model = build()
    enc, mom = model.encoder.state_dict(), model.momentum_encoder.module.state_dict()
    assert all(torch.equal(enc[k], mom[k]) for k in enc)
    with torch.no_grad():
        model.encoder.cls_token.add_(1.0)
    assert torch.equal(model.export_encoder_state()["cls_token"], model.encoder.cls_token)
    exported = build(export="momentum")
    with torch.no_grad():
        exported.encoder.cls_token.add_(1.0)
    assert torch.equal(
        exported.export_encoder_state()["cls_token"], exported.momentum_encoder.module.cls_token
    )


# ---- the teacher: input normalisation, attention, patch grid ----------------------------------------------
def test_the_teacher_sees_clip_normalised_input():
    model = build()
    seen = {}
    hook = model.teacher.visual.conv1.register_forward_pre_hook(lambda m, a: seen.__setitem__("x", a[0]))
    x = images(2)
    model.loss(x, sample_ids=torch.arange(2))
    hook.remove()
    mean_in, std_in = (
        torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
        torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
    )
    mean_c, std_c = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    pixels = x * std_in + mean_in  # what the student's batch encodes
    assert torch.allclose(seen["x"], (pixels - mean_c) / std_c, atol=1e-6)


def test_attention_from_open_clip_equals_a_hand_computation_from_the_block_weights():
    torch.manual_seed(2)
    visual = build_random_clip("synthclip-micro").visual
    teacher = CLIPTeacher(visual)
    x = images(3)
    per_head, tokens, projected = teacher(x)
    blk = visual.transformer.resblocks[-1]
    captured = {}
    hook = blk.ln_1.register_forward_hook(lambda m, a, out: captured.__setitem__("h", out))
    with torch.no_grad():
        visual(teacher.clip_input(x))
    hook.remove()
    h = captured["h"]  # [B, 1 + N, width]: the attention's input
    B, T, D = h.shape
    heads = blk.attn.num_heads
    w, b = blk.attn.in_proj_weight, blk.attn.in_proj_bias
    q = (h[:, :1] @ w[:D].T + b[:D]).view(B, 1, heads, D // heads).transpose(1, 2)
    k = (h @ w[D : 2 * D].T + b[D : 2 * D]).view(B, T, heads, D // heads).transpose(1, 2)
    by_hand = ((q @ k.transpose(-2, -1)) / math.sqrt(D // heads)).softmax(dim=-1)[:, :, 0, 1:]
    assert per_head.shape == (3, heads, 64)
    assert torch.allclose(per_head, by_hand, atol=1e-6)
    assert torch.allclose(projected, tokens @ visual.proj, atol=1e-6)
    # the tokens are the tower's own: asking for the weights only moves the last block off the fused kernel
    with torch.no_grad():
        plain_tokens = visual(teacher.clip_input(x))[1]
    assert torch.allclose(tokens, plain_tokens, atol=1e-5)


def test_the_teacher_patch_grid_must_equal_the_students(tmp_path):
    clip = build_random_clip("synthclip-tiny")  # 64 px / patch 8: an 8 x 8 grid, like micro's 32 / 4
    path = save_clip(clip, tmp_path / "t.pt", {"model_cfg": _cfg("synthclip-tiny")})
    with pytest.raises(ValueError, match="patch grid"):
        methods.build("cmtmae", "micro", teacher_file=str(path), patch_size=8)


def test_teacher_targets_are_milans_projected_l2_normalised_tokens_by_default():
    model = build()
    g = model.guidance(images(2))
    assert g.feat_t.shape == (2, 64, model.teacher.embed_dim)
    assert torch.allclose(g.feat_t.norm(dim=-1), torch.ones(2, 64), atol=1e-5)
    tokens = build(teacher_target="tokens")
    assert tokens.guidance(images(2)).feat_t.shape == (2, 64, tokens.teacher.width)
    assert tokens.head_t.out_features == tokens.teacher.width


# ---- CLIP files: ours and OpenAI's -----------------------------------------------------------------------
def _cfg(name: str) -> dict:
    import json

    from methods.clip_configs import CONFIG_DIR

    return json.loads((CONFIG_DIR / f"{name}.json").read_text())


def test_a_mim_suite_teacher_file_round_trips_with_weights_only(tmp_path):
    clip = build_random_clip("synthclip-micro")
    path = save_clip(
        clip, tmp_path / "teacher.pt", {"model_cfg": _cfg("synthclip-micro"), "cost": {"wall_s": 1.0}}
    )
    torch.load(path, weights_only=True)  # plain tensors and builtins only
    loaded, meta = load_clip(path)
    assert meta["cost"] == {"wall_s": 1.0}
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in clip.state_dict().items())
    model = methods.build("cmtmae", "micro", teacher_file=str(path))
    assert model.extra_cost == {"teacher_wall_s": 1.0}


class _Holder(nn.Module):
    """A module tree holding an OpenAI CLIP state dict under its original names (what OpenAI's TorchScript
    release is, weights-wise); ``forward`` is a stand-in so it can be scripted."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _openai_archive(path: Path) -> tuple[dict, nn.Module]:
    """A small OpenAI-format CLIP release: open_clip's CLIP with QuickGELU, OpenAI's partial fp16 cast, the
    three extra keys, saved with torch.jit.save. Returns the fp16 state dict and the fp32 reference model."""
    import open_clip
    from open_clip.model import convert_weights_to_fp16

    torch.manual_seed(4)
    ref = open_clip.CLIP(
        embed_dim=32,
        vision_cfg=dict(image_size=32, patch_size=4, layers=2, width=64),  # head_width 64: 1 head, as OpenAI
        text_cfg=dict(context_length=16, vocab_size=100, width=64, heads=1, layers=1),
        quick_gelu=True,
    ).eval()
    half = open_clip.CLIP(
        embed_dim=32,
        vision_cfg=dict(image_size=32, patch_size=4, layers=2, width=64),
        text_cfg=dict(context_length=16, vocab_size=100, width=64, heads=1, layers=1),
        quick_gelu=True,
    )
    half.load_state_dict(ref.state_dict())
    convert_weights_to_fp16(half)
    state = dict(half.state_dict())
    state |= {
        "input_resolution": torch.tensor(32),
        "context_length": torch.tensor(16),
        "vocab_size": torch.tensor(100),
    }
    holder = _Holder()
    for key, value in state.items():
        *parents, leaf = key.split(".")
        node = holder
        for part in parents:
            if not hasattr(node, part):
                node.add_module(part, nn.Module())
            node = getattr(node, part)
        node.register_buffer(leaf, value.clone())
    torch.jit.save(torch.jit.script(holder), str(path))
    return state, ref


def test_openai_torchscript_release_loads_under_the_weights_only_default(tmp_path):
    path = tmp_path / "ViT-B-16-like.pt"
    state, ref = _openai_archive(path)
    assert is_torchscript_archive(path)
    # open_clip's own local-file loader refuses it under torch's weights_only default ...
    from open_clip.factory import load_state_dict as open_clip_load

    with pytest.raises(Exception, match=r"(?i)weights.only|torchscript"):
        open_clip_load(str(path))
    # ... ours reads it: every tensor, rebuilt in fp32 with QuickGELU
    model, meta = load_clip(path)
    assert meta["format"] == "openai"
    loaded = model.state_dict()
    for k, v in state.items():
        if k in ("input_resolution", "context_length", "vocab_size"):
            continue
        assert loaded[k].dtype == torch.float32 and torch.equal(loaded[k], v.float()), k
    x = images(2)
    with torch.no_grad():
        ours = model.encode_image(x)
        expected = _fp16_rounded(ref).encode_image(x)
    assert torch.allclose(ours, expected, atol=1e-5)
    # the same keys saved as a plain state dict load with weights_only=True too
    plain = tmp_path / "openai_state.pt"
    torch.save(state, plain)
    assert not is_torchscript_archive(plain)
    again, _ = load_clip(plain)
    assert all(torch.equal(again.state_dict()[k], loaded[k]) for k in loaded)
    # and CMT-MAE trains with it (8 x 8 grid at micro)
    cmt = stage2(methods.build("cmtmae", "micro", teacher_file=str(path)))
    assert set(terms(cmt.loss(images(), sample_ids=torch.arange(4)))) == {"loss_t", "loss_s"}


def _fp16_rounded(model: nn.Module) -> nn.Module:
    import copy

    from open_clip.model import convert_weights_to_fp16

    m = copy.deepcopy(model)
    convert_weights_to_fp16(m)
    return m.float().eval()
