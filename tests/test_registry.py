"""Method discovery, variants and build()."""

import shutil
from pathlib import Path

import pytest
import torch

import methods
from methods import registry
from methods.mae.model import MAE

MAE_DIR = Path(registry.__file__).parent / "mae"


def test_mae_is_discovered_and_built_from_a_budget():
    assert "mae" in methods.list_methods()
    model = methods.build("mae", "micro")
    assert isinstance(model, MAE) and model.encoder.embed_dim == 64 and model.num_patches == 64
    model = methods.build("mae", "micro", mask_ratio=0.5, decoder_depth=2)
    assert model.mask_ratio == 0.5 and len(model.decoder.blocks) == 2
    custom = dict(methods.backbone.ARCHS["micro"], embed_dim=32, num_heads=2)
    assert methods.build("mae", custom).encoder.embed_dim == 32
    assert methods.method_config("mae") == {}
    with pytest.raises(KeyError, match="unknown method"):
        methods.build("no-such-method")


def test_budget_keys_are_the_official_mae_argument_names():
    assert {
        "img_size", "patch_size", "embed_dim", "depth", "num_heads", "decoder_embed_dim", "decoder_depth",
        "decoder_num_heads", "mlp_ratio", "norm_pix_loss", "mask_ratio",
    } == registry.BUDGET_KEYS  # fmt: skip


def test_a_copied_method_folder_appears_everywhere(scratch_root):
    shutil.copytree(MAE_DIR, scratch_root / "maecopy", ignore=shutil.ignore_patterns("__pycache__"))
    config = scratch_root / "maecopy" / "config.py"
    config.write_text(config.read_text() + "\nconfig = {'mlp_ratio_note': 1}\nvariants = {'maecopy-b': {}}\n")
    (scratch_root / "maecopy" / "model.py").write_text(
        (scratch_root / "maecopy" / "model.py")
        .read_text()
        .replace(
            "def __init__(self, **arch) -> None:", "def __init__(self, mlp_ratio_note=0, **arch) -> None:"
        )
    )
    names = methods.list_methods()
    assert names.index("mae") < names.index("maecopy") < names.index("maecopy-b")
    model = methods.build("maecopy", "micro")
    assert type(model).__module__ == "scratch_methods.maecopy.model"
    assert methods.method_config("maecopy-b") == {"mlp_ratio_note": 1}
    assert registry.METHODS.get("maecopy") is type(model)


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ("config = {'mask_ratio': 0.9}", "budget keys"),
        ("config = {'gamma': 1.0}\nvariants = {'v': {'gama': 2.0}}", "unknown keys"),
    ],
)
def test_method_configs_cannot_touch_budget_keys_or_misspell(scratch_root, extra, error):
    shutil.copytree(MAE_DIR, scratch_root / "bad", ignore=shutil.ignore_patterns("__pycache__"))
    config = scratch_root / "bad" / "config.py"
    config.write_text(config.read_text() + "\n" + extra + "\n")
    with pytest.raises(ValueError, match=error):
        methods.list_methods()


@pytest.mark.parametrize("name", methods.list_methods())
def test_every_method_honours_the_contract(name):
    """Run for each discovered method and variant, so a new folder is checked without a new test."""
    torch.manual_seed(0)
    model = methods.build(name, "micro")
    images, ids = torch.randn(2, 3, 32, 32), torch.tensor([3, 8])
    losses = model(images, ids, mode="loss")
    assert losses and "loss" not in losses, "one loss_* key per term, never a total"
    terms = {k: v for k, v in losses.items() if "loss" in k}
    assert terms and all(v.ndim == 0 and torch.isfinite(v) for v in terms.values())
    sum(terms.values()).backward()
    for pname, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{name}: no gradient reaches {pname}"
    # an explicit mask overrides the generator, and the same (seed, step, ids) gives the same loss
    mask = torch.zeros(2, 64, dtype=torch.bool)
    mask[:, 16:] = True
    assert torch.equal(model.masking(images, mask).mask, mask)
    with torch.no_grad():
        again = model.loss(images, sample_ids=ids)
        assert all(torch.equal(again[k], losses[k].detach()) for k in terms)
        assert model(images, mode="tensor").shape == (2, 65, 64)
    model.set_progress(step=1, max_steps=2)
    model.after_train_step()
