"""DSA single-operation mode: shapes, parameter ranges, per-image parameters, determinism."""
import math

import pytest
import torch

from benchmark.protocol import load_protocol
from evaluator import dsa

P = load_protocol().recipe.augmentation  # the released protocol's DSA magnitudes


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def ramp(n=64, size=32):
    """Images whose pixels all differ, so a geometric op can be read back exactly."""
    base = torch.arange(size * size, dtype=torch.float32).view(1, 1, size, size) + 1
    return base.repeat(n, 3, 1, 1)


@pytest.mark.parametrize("op", P.ops)
@pytest.mark.parametrize("size", [8, 32, 64])
def test_every_op_keeps_shape_dtype_and_is_seeded(op, size):
    x = torch.randn(16, 3, size, size)
    a = dsa.augment(x, op, P, gen(3))
    b = dsa.augment(x, op, P, gen(3))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b)


@pytest.mark.parametrize("op", P.ops)
def test_augment_keeps_channels_last(op):
    x = torch.randn(8, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    assert dsa.augment(x, op, P, gen()).is_contiguous(memory_format=torch.channels_last)


def test_brightness_offsets_are_per_image_in_half_unit_range():
    out = dsa.brightness(torch.zeros(500, 3, 4, 4), P, gen())
    offsets = out[:, 0, 0, 0]
    assert torch.all(out == offsets.view(-1, 1, 1, 1))  # one offset per image
    assert offsets.min() >= -0.5 and offsets.max() < 0.5
    assert offsets.unique().numel() > 400  # drawn independently per image
    assert offsets.min() < -0.45 and offsets.max() > 0.45


def test_saturation_factor_in_0_2_and_grey_images_unchanged():
    grey = torch.rand(50, 1, 4, 4).repeat(1, 3, 1, 1)
    assert torch.allclose(dsa.saturation(grey, P, gen()), grey)
    x = torch.zeros(400, 3, 1, 1)
    x[:, 0] = 1.0  # mean over channels = 1/3
    out = dsa.saturation(x, P, gen())
    factor = (out[:, 0] - 1 / 3) / (2 / 3)
    assert factor.min() >= 0 and factor.max() < 2 and factor.max() > 1.9 and factor.min() < 0.1


def test_contrast_factor_in_half_to_one_and_half():
    x = torch.zeros(400, 3, 2, 2)
    x[:, :, 0, 0] = 4.0  # image mean = 1
    out = dsa.contrast(x, P, gen())
    factor = (out[:, 0, 0, 0] - 1.0) / 3.0
    assert factor.min() >= 0.5 and factor.max() < 1.5 and factor.min() < 0.55 and factor.max() > 1.45


def test_color_applies_brightness_saturation_contrast_in_order():
    x = torch.randn(10, 3, 8, 8)
    g1, g2 = gen(5), gen(5)
    expected = dsa.contrast(dsa.saturation(dsa.brightness(x, P, g2), P, g2), P, g2)
    assert torch.allclose(dsa.color(x, P, g1), expected)


@pytest.mark.parametrize("size,shift", [(8, 1), (32, 4), (64, 8)])
def test_crop_is_an_integer_translation_with_zero_fill(size, shift):
    assert dsa.crop_shift(size, P) == shift
    x = ramp(300, size)
    out = dsa.crop(x, P, gen())
    seen = set()
    for img, res in zip(x, out):
        centre = res[0, size // 2, size // 2].item()  # value v = r*size + c + 1 at the source
        r, c = divmod(int(centre) - 1, size)
        dy, dx = r - size // 2, c - size // 2
        assert abs(dy) <= shift and abs(dx) <= shift
        seen.add((dy, dx))
        expected = torch.zeros_like(img)
        ys = slice(max(0, -dy), min(size, size - dy))
        xs = slice(max(0, -dx), min(size, size - dx))
        expected[:, ys, xs] = img[:, ys.start + dy: ys.stop + dy, xs.start + dx: xs.stop + dx]
        assert torch.equal(res, expected)
    extremes = {d for pair in seen for d in pair}
    assert shift in extremes and -shift in extremes


@pytest.mark.parametrize("size,side", [(8, 4), (32, 16), (64, 32)])
def test_cutout_zeroes_one_square_clipped_at_border(size, side):
    assert dsa.cutout_side(size, P) == side
    out = dsa.cutout(torch.ones(300, 3, size, size), P, gen())
    assert torch.all(out[:, 0] == out[:, 1])
    full, corners = 0, set()
    for img in out[:, 0]:
        rows = (img == 0).any(dim=1).nonzero().flatten()
        cols = (img == 0).any(dim=0).nonzero().flatten()
        # clipped at the border, a square keeps at least half its side (its centre lies inside)
        assert side // 2 <= len(rows) <= side and side // 2 <= len(cols) <= side and len(rows) > 0
        assert int((img == 0).sum()) == len(rows) * len(cols)  # a (clipped) rectangle
        assert rows.max() - rows.min() + 1 == len(rows) and cols.max() - cols.min() + 1 == len(cols)
        full += len(rows) == side and len(cols) == side
        corners.add((int(rows.min()), int(cols.min())))
    assert full > 0  # unclipped squares have exactly the documented side
    assert len(corners) > size // 2  # placed per image, not one square for the batch


def test_flip_is_per_image_with_probability_half():
    x = torch.randn(400, 3, 8, 8)
    out = dsa.flip(x, P, gen())
    flipped = torch.tensor([torch.equal(o, i.flip(2)) for o, i in zip(out, x)])
    kept = torch.tensor([torch.equal(o, i) for o, i in zip(out, x)])
    assert torch.all(flipped ^ kept)
    assert 150 < int(flipped.sum()) < 250


def test_scale_factors_independent_in_range():
    x = torch.zeros(2000, 3, 8, 8)
    sx, sy = dsa.scale_factors(x, P, gen())
    for s in (sx, sy):
        assert s.min() >= 1 / 1.2 and s.max() <= 1.2 and s.min() < 0.85 and s.max() > 1.18
    assert not torch.allclose(sx, sy)


def test_rotation_angles_within_15_degrees():
    a = dsa.rotation_angles(torch.zeros(2000, 3, 8, 8), P, gen())
    assert a.abs().max() <= math.radians(15) and a.abs().max() > math.radians(14.5)


def test_scale_and_rotate_resample_with_zeros_outside():
    x = torch.ones(64, 3, 32, 32)
    for op in (dsa.scale, dsa.rotate):
        out = op(x, P, gen())
        assert out.min() >= 0 and out.max() <= 1 + 1e-5
    rotated = dsa.rotate(x, P, gen())
    assert (rotated[:, :, 0, 0] < 1).any()  # corners leave the image under rotation: zero fill
    zoomed = dsa.scale(x, P, gen())
    assert (zoomed < 0.999).any() and (zoomed[:, :, 16, 16] > 0.999).all()


def test_choose_op_is_uniform_over_six_ops():
    g = gen()
    counts = {op: 0 for op in P.ops}
    for _ in range(6000):
        counts[dsa.choose_op(P, g)] += 1
    assert set(counts) == {"color", "crop", "cutout", "flip", "scale", "rotate"}
    assert all(850 < c < 1150 for c in counts.values())
