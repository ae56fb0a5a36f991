"""Tests for hcr.augment: seeded, batched training augmentation."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from hcr.augment import (
    PRESET_NAMES,
    AugmentConfig,
    AugmentError,
    Augmenter,
    _affine_theta,
    _elastic_displacement,
    _max_filter3,
    _smooth,
    _stroke,
    _warp,
)
from hcr.errors import HcrError

OFF = AugmentConfig.preset("none")


def only(**kwargs: object) -> AugmentConfig:
    """A config with every step off except the given ones."""
    return AugmentConfig.from_dict({**OFF.to_dict(), **kwargs})


def glyph_l(b: int = 1, size: int = 28) -> torch.Tensor:
    """A bright "L" on black, roughly centred, like a benchmark digit."""
    x = torch.zeros(b, 1, size, size)
    x[:, :, 6:22, 10:14] = 1.0
    x[:, :, 18:22, 10:20] = 1.0
    return x


def centre_of_mass(x: torch.Tensor) -> torch.Tensor:
    """(B, 2) ink centroid as (x, y) in pixels."""
    _, _, h, w = x.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype), indexing="ij")
    mass = x.sum((1, 2, 3))
    return torch.stack([(x * xs).sum((1, 2, 3)) / mass, (x * ys).sum((1, 2, 3)) / mass], -1)


def spread(x: torch.Tensor) -> torch.Tensor:
    """(B, 2) ink standard deviation along x and y in pixels."""
    _, _, h, w = x.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype), indexing="ij")
    com = centre_of_mass(x)
    mass = x.sum((1, 2, 3))
    var_x = (x * (xs - com[:, 0].view(-1, 1, 1, 1)) ** 2).sum((1, 2, 3)) / mass
    var_y = (x * (ys - com[:, 1].view(-1, 1, 1, 1)) ** 2).sum((1, 2, 3)) / mass
    return torch.stack([var_x, var_y], -1).sqrt()


def warp(
    x: torch.Tensor, angle: float = 0.0, shear: float = 0.0, scale: float = 1.0, shift: tuple[float, float] = (0.0, 0.0)
) -> torch.Tensor:
    """Apply fixed affine parameters to every sample through the augmenter's own helpers."""
    b, _, h, w = x.shape
    full = [torch.full((b,), v) for v in (angle, shear, scale)]
    return _warp(x, _affine_theta(*full, torch.tensor([shift]).expand(b, 2), (h, w)))


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- whole pipeline


@pytest.mark.parametrize("name", ["light", "default", "strong"])
def test_same_seed_same_output_other_seed_differs(name: str) -> None:
    aug, x = Augmenter(AugmentConfig.preset(name)), glyph_l(16)
    a, b = aug(x, seeded(1)), aug(x, seeded(1))
    assert torch.equal(a, b)
    assert not torch.equal(a, aug(x, seeded(2)))


def test_global_rng_is_used_without_generator() -> None:
    aug, x = Augmenter(), glyph_l(8)
    torch.manual_seed(5)
    a = aug(x)
    torch.manual_seed(5)
    assert torch.equal(a, aug(x))


def test_samples_get_different_parameters() -> None:
    out = Augmenter()(glyph_l(8), seeded(0))
    assert all(not torch.equal(out[0], out[i]) for i in range(1, 8))


@pytest.mark.parametrize("name", PRESET_NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_device_and_range_preserved(name: str, dtype: torch.dtype) -> None:
    x = torch.rand(5, 1, 24, 20, generator=seeded(3)).to(dtype)
    out = Augmenter(AugmentConfig.preset(name))(x, seeded(4))
    assert out.shape == x.shape and out.dtype == dtype and out.device == x.device
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_none_preset_is_exact_identity_and_does_not_alias() -> None:
    x = torch.rand(7, 1, 28, 28, generator=seeded(0))
    out = Augmenter(AugmentConfig.preset("none"))(x, seeded(1))
    assert torch.equal(out, x)
    out[0, 0, 0, 0] = 2.0
    assert x[0, 0, 0, 0] != 2.0


def test_default_augmenter_uses_default_preset() -> None:
    assert Augmenter().config == AugmentConfig.preset("default") == AugmentConfig()


@pytest.mark.parametrize("b", [1, 256])
def test_batch_of_one_and_large_batch(b: int) -> None:
    x = glyph_l(b)
    out = Augmenter(AugmentConfig.preset("strong"))(x, seeded(0))
    assert out.shape == (b, 1, 28, 28)
    assert torch.isfinite(out).all()
    stroke = Augmenter(only(stroke_prob=1.0))(x, seeded(9))
    assert (stroke.sum((1, 2, 3)) != x.sum((1, 2, 3))).all()


def test_default_preset_keeps_the_character() -> None:
    x = glyph_l(64)
    out = Augmenter()(x, seeded(0))
    ratio = out.sum((1, 2, 3)) / x.sum((1, 2, 3))
    # thinning (up to 0.5 px a side) stacked on shrinking (0.81x area) can take a 4 px stroke just below 0.5
    assert ((ratio > 0.4) & (ratio < 2.0)).all(), ratio
    assert ((ratio > 0.5) & (ratio < 2.0)).float().mean() > 0.95
    assert 0.9 < ratio.median() < 1.1
    # the glyph stays near where it was: max shift 0.08 * 28 = 2.24 px plus rotation/shear about the centre
    assert (centre_of_mass(out) - centre_of_mass(x)).norm(dim=-1).max() < 5.0


@pytest.mark.parametrize(
    "bad",
    [torch.rand(28, 28), torch.rand(2, 28, 28), torch.rand(2, 3, 28, 28), torch.zeros(2, 1, 28, 28, dtype=torch.uint8)],
)
def test_rejects_bad_batches(bad: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="augmentation expects"):
        Augmenter()(bad)


# ---------------------------------------------------------------- geometry


def test_identity_parameters_reproduce_input() -> None:
    x = torch.rand(3, 1, 20, 30, generator=seeded(0))
    assert torch.allclose(warp(x), x, atol=1e-5)


def test_rotation_is_counter_clockwise_about_the_centre_on_non_square_images() -> None:
    x = torch.zeros(1, 1, 20, 30)  # centre at (x, y) = (14.5, 9.5)
    x[:, :, 3:5, 14:16] = 1.0  # a dot 6 px above the centre
    out = warp(x, angle=90.0)
    assert torch.allclose(out.sum(), x.sum(), atol=1e-4)
    assert torch.allclose(centre_of_mass(out)[0], torch.tensor([8.5, 9.5]), atol=1e-3)  # now 6 px left of it
    assert torch.allclose(centre_of_mass(warp(x, angle=-90.0))[0], torch.tensor([20.5, 9.5]), atol=1e-3)


def test_rotating_a_vertical_bar_makes_it_horizontal() -> None:
    x = torch.zeros(1, 1, 28, 28)
    x[:, :, 4:24, 13:15] = 1.0
    before, after = spread(x)[0], spread(warp(x, angle=90.0))[0]
    assert before[1] > 3 * before[0]
    assert torch.allclose(after, before.flip(0), atol=1e-3)


def test_shift_moves_centre_of_mass_by_given_pixels() -> None:
    x = glyph_l()
    moved = centre_of_mass(warp(x, shift=(3.0, -2.0))) - centre_of_mass(x)
    assert torch.allclose(moved[0], torch.tensor([3.0, -2.0]), atol=1e-3)


def test_scale_grows_the_glyph_about_the_centre() -> None:
    x = torch.zeros(1, 1, 28, 28)
    x[:, :, 10:18, 10:18] = 1.0
    out = warp(x, scale=1.5)
    assert torch.allclose(spread(out), 1.5 * spread(x), rtol=0.05)
    assert torch.allclose(centre_of_mass(out), centre_of_mass(x), atol=1e-3)


def test_shear_slants_a_vertical_bar() -> None:
    x = torch.zeros(1, 1, 28, 28)
    x[:, :, 4:24, 13:15] = 1.0
    out = warp(x, shear=30.0)
    top, bottom = centre_of_mass(out[..., :14, :])[0, 0], centre_of_mass(out[..., 14:, :])[0, 0]
    assert top < 13.5 - 2 and bottom > 13.5 + 2  # x' = x + tan(30) * y about the centre


def test_augmenter_shift_only_stays_within_range_in_both_directions() -> None:
    x = glyph_l(128)
    moved = centre_of_mass(Augmenter(only(shift=0.1))(x, seeded(0))) - centre_of_mass(x)
    assert moved.abs().max() <= 0.1 * 28 + 0.05
    assert (moved > 1.0).any(dim=0).all() and (moved < -1.0).any(dim=0).all()


def test_augmenter_rotation_only_keeps_centred_glyph_centred_and_ink() -> None:
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 6:22, 12:16] = 1.0  # centred bar
    out = Augmenter(only(rotation=90.0))(x, seeded(0))
    assert (centre_of_mass(out) - centre_of_mass(x)).abs().max() < 0.2
    assert torch.allclose(out.sum((1, 2, 3)), x.sum((1, 2, 3)), rtol=0.05)
    horizontalness = spread(out)[:, 0] / spread(out)[:, 1]
    assert horizontalness.min() < 0.5 and horizontalness.max() > 2.0  # rotations spread over [-90, 90]


# ---------------------------------------------------------------- elastic


def test_elastic_field_has_requested_rms_in_pixels_and_is_smooth() -> None:
    noise = torch.rand(8, 2, 20, 30, generator=seeded(0)) * 2 - 1
    alpha = torch.tensor([2.0] * 4 + [0.0] * 4)
    field = _elastic_displacement(noise, alpha, sigma=3.0)
    assert field.shape == (8, 20, 30, 2)
    pixels = field * torch.tensor([30 / 2, 20 / 2])
    rms = pixels.square().sum(-1).mean((1, 2)).sqrt()
    assert torch.allclose(rms, alpha, atol=1e-4)
    step = (pixels[:4, :, 1:] - pixels[:4, :, :-1]).abs().mean()
    assert step < 0.25 * pixels[:4].abs().mean()  # neighbours move together


def test_elastic_changes_only_selected_samples_and_keeps_ink() -> None:
    x = glyph_l(64)
    out = Augmenter(only(elastic_prob=0.5, elastic_alpha=2.0))(x, seeded(0))
    unchanged = (out - x).abs().amax((1, 2, 3)) < 1e-4
    assert 10 < unchanged.sum() < 54
    ratio = out.sum((1, 2, 3)) / x.sum((1, 2, 3))
    assert ((ratio > 0.7) & (ratio < 1.4)).all()


def test_smooth_matches_zero_padded_separable_conv() -> None:
    x = torch.rand(3, 2, 12, 9, generator=seeded(0), dtype=torch.float64)
    sigma = torch.tensor([0.7, 1.5, 3.0], dtype=torch.float64)

    def reference(img: torch.Tensor, s: float) -> torch.Tensor:
        def kernel(n: int) -> torch.Tensor:  # all offsets that can matter for n pixels
            k = torch.exp(-0.5 * (torch.arange(1 - n, n, dtype=torch.float64) / s) ** 2)
            return (k / k.sum()).expand(img.shape[1], 1, -1)

        _, c, h, w = img.shape
        out = F.conv2d(img, kernel(w).unsqueeze(2), padding=(0, w - 1), groups=c)
        return F.conv2d(out, kernel(h).unsqueeze(3), padding=(h - 1, 0), groups=c)

    per_sample = _smooth(x, sigma)
    for i, s in enumerate(sigma.tolist()):
        assert torch.allclose(per_sample[i : i + 1], reference(x[i : i + 1], s), atol=1e-12)
    assert torch.allclose(_smooth(x, sigma[1]), reference(x, 1.5), atol=1e-12)


# ---------------------------------------------------------------- stroke, blur, erase, noise


def test_max_filter_equals_max_pool() -> None:
    x = torch.randn(4, 1, 13, 17, generator=seeded(0))
    assert torch.equal(_max_filter3(x), F.max_pool2d(x, 3, 1, 1))


def test_stroke_helper_dilates_erodes_blends_or_keeps() -> None:
    x = glyph_l(4)
    selected, dilate = torch.tensor([True, True, True, False]), torch.tensor([True, False, False, True])
    out = _stroke(x, selected, dilate, torch.tensor([1.0, 1.0, 0.5, 1.0]))
    thick, thin = F.max_pool2d(x, 3, 1, 1), -F.max_pool2d(-x, 3, 1, 1)
    assert torch.equal(out[0], thick[0])
    assert torch.equal(out[1], thin[1])
    assert torch.allclose(out[2], (x[2] + thin[2]) / 2)
    assert torch.equal(out[3], x[3])
    ink = out.sum((1, 2, 3))
    assert ink[0] > ink[3] > ink[2] > ink[1] > 0


def test_augmenter_stroke_thickens_some_and_thins_others() -> None:
    x = glyph_l(32)
    out = Augmenter(only(stroke_prob=1.0))(x, seeded(0))
    thick, thin = F.max_pool2d(x, 3, 1, 1), -F.max_pool2d(-x, 3, 1, 1)
    is_thick = ((out >= x) & (out <= thick)).flatten(1).all(1) & (out.sum((1, 2, 3)) > x.sum((1, 2, 3)))
    is_thin = ((out <= x) & (out >= thin)).flatten(1).all(1) & (out.sum((1, 2, 3)) < x.sum((1, 2, 3)))
    assert (is_thick ^ is_thin).all()
    assert 5 < is_thick.sum() < 27
    target = torch.where(is_thick.view(-1, 1, 1, 1), thick, thin)
    amount = (out - x).sum((1, 2, 3)) / (target - x).sum((1, 2, 3))
    assert ((amount > 0.25 - 1e-5) & (amount < 0.5 + 1e-5)).all()  # partial, per-sample strength
    assert amount.std() > 0.02


def test_blur_spreads_a_dot_and_keeps_its_mass() -> None:
    x = torch.zeros(16, 1, 28, 28)
    x[:, :, 14, 14] = 1.0
    out = Augmenter(only(blur_prob=1.0))(x, seeded(0))
    assert torch.allclose(out.sum((1, 2, 3)), x.sum((1, 2, 3)), atol=1e-5)
    assert (out.amax((1, 2, 3)) < 0.7).all()
    assert (spread(out) > 0.4).all()
    assert len(set(out.amax((1, 2, 3)).tolist())) > 1  # per-sample sigma


def test_erasing_zeroes_one_rectangle_of_requested_area() -> None:
    x = torch.ones(64, 1, 28, 28)
    out = Augmenter(only(erase_prob=1.0, erase_area=(0.05, 0.1)))(x, seeded(0))
    for img in out[:, 0]:
        zero = img == 0
        rows, cols = zero.any(1).nonzero(), zero.any(0).nonzero()
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert box == zero.sum()  # a filled rectangle
        assert 0.03 <= zero.float().mean() <= 0.13
        assert torch.equal(img[~zero], torch.ones(int((~zero).sum())))


def test_erasing_probability_and_ink_reduction() -> None:
    x = torch.ones(64, 1, 28, 28)
    out = Augmenter(only(erase_prob=0.5))(x, seeded(1))
    erased = out.sum((1, 2, 3)) < x.sum((1, 2, 3))
    assert 10 < erased.sum() < 54
    assert torch.equal(out[~erased], x[~erased])


def test_noise_changes_pixels_but_stays_in_range() -> None:
    x = glyph_l(4)
    out = Augmenter(only(noise_std=0.1))(x, seeded(0))
    assert (out != x).float().mean() > 0.4  # half of the background is pushed below 0 and clamped
    assert out.min() == 0.0 and out.max() == 1.0
    assert 0.03 < (out - x).abs().mean() < 0.1


# ---------------------------------------------------------------- config


def test_to_dict_from_dict_round_trip_through_json() -> None:
    for name in PRESET_NAMES:
        cfg = AugmentConfig.preset(name)
        d = json.loads(json.dumps(cfg.to_dict()))
        assert AugmentConfig.from_dict(d) == cfg
    loaded = AugmentConfig.from_dict({"rotation": 5, "scale": [0.8, 1.25]})
    assert loaded == AugmentConfig(rotation=5.0, scale=(0.8, 1.25)) and isinstance(loaded.rotation, float)
    assert isinstance(AugmentConfig.from_dict({"scale": [0.8, 1.25]}).scale, tuple)


def test_from_dict_rejects_unknown_keys_naming_them() -> None:
    with pytest.raises(ValueError, match="rotaton") as err:
        AugmentConfig.from_dict({"rotaton": 3.0, "shift": 0.1})
    assert "rotation" in str(err.value) and "erase_area" in str(err.value)
    assert isinstance(err.value, HcrError)


def test_unknown_preset_lists_names() -> None:
    with pytest.raises(ValueError, match="'heavy'") as err:
        AugmentConfig.preset("heavy")
    assert all(name in str(err.value) for name in PRESET_NAMES)


@pytest.mark.parametrize(
    "bad",
    [
        {"rotation": -1.0},
        {"elastic_prob": 1.5},
        {"scale": (0.0, 1.0)},
        {"scale": (1.2, 0.9)},
        {"scale": (1.0,)},
        {"shear": 90.0},
        {"shift": 1.5},
        {"elastic_sigma": 0.0},
        {"erase_area": (0.2, 1.5)},
        {"noise_std": float("nan")},
        {"rotation": "a lot"},
    ],
)
def test_invalid_values_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(AugmentError, match=next(iter(bad))):
        AugmentConfig.from_dict(bad)


def test_scaled_multiplies_strengths_and_clips_probabilities() -> None:
    cfg = AugmentConfig().scaled(4.0)
    assert cfg.rotation == 48.0 and math.isclose(cfg.shift, 0.32) and cfg.elastic_alpha == 6.0
    assert cfg.elastic_prob == 1.0 and cfg.stroke_prob == 0.8
    assert math.isclose(cfg.scale[0], 0.9**4) and math.isclose(cfg.scale[1], 1.1**4)
    assert cfg.elastic_sigma == 3.0 and cfg.erase_area == (0.02, 0.1)
    half = AugmentConfig().scaled(0.5)
    assert half.scale[0] > 0.9 and half.scale[1] < 1.1 and half.rotation == 6.0
    assert AugmentConfig().scaled(0.0) == AugmentConfig.preset("none")
    assert AugmentConfig().scaled(1.0) == AugmentConfig()
    with pytest.raises(ValueError, match="strength"):
        AugmentConfig().scaled(-1.0)


def test_presets_are_ordered_by_strength() -> None:
    light, default, strong = (AugmentConfig.preset(n) for n in ("light", "default", "strong"))
    for field in ("rotation", "shift", "shear", "elastic_prob", "stroke_prob"):
        assert getattr(light, field) < getattr(default, field) < getattr(strong, field)


# ---------------------------------------------------------------- devices


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_with_a_cpu_generator() -> None:
    x = glyph_l(32)
    aug = Augmenter(AugmentConfig.preset("strong"))
    on_gpu = aug(x.cuda(), seeded(0))
    assert on_gpu.device.type == "cuda"
    assert torch.allclose(on_gpu.cpu(), aug(x, seeded(0)), atol=1e-4)
    gen = torch.Generator(device="cuda").manual_seed(0)
    assert torch.equal(aug(x.cuda(), gen), aug(x.cuda(), torch.Generator(device="cuda").manual_seed(0)))
    assert aug(x, torch.Generator(device="cuda").manual_seed(0)).device.type == "cpu"
