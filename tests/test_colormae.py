"""ColorMAE: the project's coloured-noise patterns, their cache, and the masks cut from them."""

import itertools

import pytest
import torch

import methods
from methods.colormae.noise import COLORS, cached_patterns, generate_patterns, radial_frequency
from methods.masking import num_masked


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("colormae-cache"))


def build(cache, name="colormae", **keys):
    torch.manual_seed(0)
    return methods.build(name, "micro", cache_dir=cache, **keys)


def test_variants_are_the_four_colours():
    assert {n: methods.method_config(n)["color"] for n in methods.list_methods() if "colormae" in n} == {
        "colormae": "green",
        "colormae-red": "red",
        "colormae-blue": "blue",
        "colormae-purple": "purple",
    }


@pytest.mark.parametrize("color", COLORS)
def test_every_pattern_masks_exactly_the_mae_count(cache, color):
    model = build(cache, color=color)
    ids = torch.arange(512)  # 512 draws over the 256 patterns, crops and flips
    mask = model.sample_mask(torch.zeros(len(ids), 3, 32, 32), ids).mask
    mae = methods.build("mae", "micro").sample_mask(torch.zeros(2, 3, 32, 32)).mask
    assert (mask.sum(dim=1) == num_masked(64, 0.75)).all() and (mask.sum(dim=1) == mae.sum(dim=1)[0]).all()
    # the visible patches are exactly the largest pattern values of each window
    windows = model.pattern_windows(ids[:8]).reshape(8, -1)
    kept_min = torch.where(mask[:8], torch.inf, windows).min(dim=1).values
    masked_max = torch.where(mask[:8], windows, -torch.inf).max(dim=1).values
    assert (kept_min > masked_max).all()


def band_powers(color: str) -> list[float]:
    """Mean power of 64 patterns (64 x 64) in the bands [0, .1), [.1, .2), [.2, .3), [.3, .4), [.4, .5),
    [.5, .71] cycles per patch (DC excluded), normalised per pixel."""
    patterns = generate_patterns(color, count=64, size=64, seed=0).double()
    power = (torch.fft.fft2(patterns).abs() ** 2).mean(dim=0) / 64**2
    f = radial_frequency(64)
    edges = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75]
    return [power[(f > 0) & (f >= lo) & (f < hi)].mean().item() for lo, hi in itertools.pairwise(edges)]


def test_power_spectra_peak_where_their_colour_says():
    # measured (seed 0, sigma 1 and 2 patches): red [25.2, 2.26, 0.01, 0, 0, 0], green [1.60, 5.58, 2.33,
    # 0.28, 0.01, 0], blue [0.01, 0.20, 0.67, 1.09, 1.26, 1.30], purple [0.76, 0.39, 0.65, 1.04, 1.21, 1.24]
    red, green, blue, purple = (band_powers(c) for c in ("red", "green", "blue", "purple"))
    assert max(range(6), key=red.__getitem__) == 0 and red[0] > 10 * red[1] > 10 * red[2]
    assert max(range(6), key=green.__getitem__) == 1 and green[1] > 2 * green[2] > 2 * green[0] > 2
    assert green[1] > 3 * green[0] and green[1] > 10 * green[3]
    assert max(range(6), key=blue.__getitem__) >= 4 and blue[5] > 50 * blue[0]
    assert blue == sorted(blue)  # rises monotonically to the highest frequencies
    assert min(range(6), key=purple.__getitem__) == 1 and purple[0] > 1.5 * purple[1] < purple[4] / 2
    # the green pass band: its radial peak sits at ~0.15 cycles per patch
    patterns = generate_patterns("green", count=64, size=64, seed=0).double()
    power = (torch.fft.fft2(patterns).abs() ** 2).mean(dim=0)
    ring = (radial_frequency(64) * 64).round().long().flatten()
    profile = torch.zeros(int(ring.max()) + 1, dtype=torch.float64).index_add_(0, ring, power.flatten())
    profile = profile / torch.bincount(ring)
    assert 0.12 <= (int(profile[1:33].argmax()) + 1) / 64 <= 0.19


def test_patterns_are_standardised_and_seeded():
    a = generate_patterns("green", 4, 32, seed=3)
    assert torch.allclose(a.mean(dim=(1, 2)), torch.zeros(4), atol=1e-5)
    assert torch.allclose(a.std(dim=(1, 2)), torch.ones(4), atol=1e-5)
    assert torch.equal(a, generate_patterns("green", 4, 32, seed=3))
    assert not torch.equal(a, generate_patterns("green", 4, 32, seed=4))
    with pytest.raises(ValueError, match="colour"):
        generate_patterns("white", 1, 8, 0)


def test_cache_is_written_atomically_and_regenerated_when_missing(tmp_path):
    first = cached_patterns("blue", 4, 16, 0, cache_dir=tmp_path)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npy" and "blue" in files[0].name
    assert torch.equal(cached_patterns("blue", 4, 16, 0, cache_dir=tmp_path), first)  # read back
    files[0].unlink()
    assert torch.equal(cached_patterns("blue", 4, 16, 0, cache_dir=tmp_path), first)  # regenerated
    cached_patterns("blue", 4, 16, 1, cache_dir=tmp_path)  # other parameters: another file
    assert len(list(tmp_path.iterdir())) == 2 and not list(tmp_path.glob(".*tmp"))


def test_masks_are_keyed_on_seed_step_and_sample_id(cache):
    model = build(cache)
    images = torch.zeros(3, 3, 32, 32)
    a = model.sample_mask(images[:2], torch.tensor([5, 9])).mask
    b = model.sample_mask(images, torch.tensor([1, 9, 5])).mask
    assert torch.equal(a[0], b[2]) and torch.equal(a[1], b[1])  # same key -> same mask
    assert not torch.equal(a[0], a[1])  # different sample id -> different mask
    model.set_progress(step=1, max_steps=10)
    assert not torch.equal(model.sample_mask(images[:2], torch.tensor([5, 9])).mask, a)
    model.seed = 1
    model.set_progress(step=0, max_steps=10)
    assert not torch.equal(model.sample_mask(images[:2], torch.tensor([5, 9])).mask, a)
    # the official reading: one crop and flip for the batch, sample b takes pattern b
    official = build(cache, crop="batch")
    w = official.pattern_windows(torch.tensor([7, 3]))
    assert torch.equal(w, official.pattern_windows(torch.tensor([0, 1])))
    assert not torch.equal(w[0], w[1])


def test_no_extra_parameters_and_the_loss_is_maes(cache):
    model, mae = build(cache), methods.build("mae", "micro")
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in mae.parameters())
    mae.load_state_dict(model.state_dict(), strict=True)
    images, ids = torch.randn(2, 3, 32, 32), torch.tensor([0, 1])
    mask = model.sample_mask(images, ids).mask
    with torch.no_grad():
        assert torch.equal(
            model.loss(images, sample_ids=ids)["loss_rec"], mae.loss(images, mask=mask)["loss_rec"]
        )
