"""The shipped generators' own code, imported: mel's truncation, t2i's augmentation."""

import pytest
import torch
from conftest import ROOT, load_module

SHIPPED = ROOT / "submissions"


def test_mel_truncation_and_mixed_resolution():
    model = load_module(SHIPPED / "mel" / "model.py", "mel_model")
    g = model.load(SHIPPED / "mel" / "weights" / "digits.safetensors")
    rng = torch.Generator().manual_seed(0)
    z = model.sample_latents(4000, g.z_dim, 0.5, rng)
    assert z.std().item() == pytest.approx(0.5, abs=0.02)  # pulled halfway toward the mean
    y = torch.arange(10)
    low = g(z[:10], y, low_res=True)
    full = g(z[:10], y)
    assert low.shape == (10, 3, 4, 4) and full.shape == (10, 3, 8, 8)
    assert model.to_uint8(low, 8).shape == (10, 3, 8, 8)


def test_t2i_augmentation_respects_the_chosen_operations():
    gen_module = load_module(SHIPPED / "t2i_template" / "generate.py", "t2i_generate")
    x = torch.rand(16, 3, 8, 8)
    g = torch.Generator().manual_seed(0)
    out = gen_module.augment(x, {"crop", "rotate", "color", "gamma"}, g)
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1 and not torch.allclose(out, x)
    assert torch.allclose(gen_module.augment(x, set(), g), x, atol=1e-5)  # no op: identity
    flipped = gen_module.augment(x, {"flip"}, torch.Generator().manual_seed(1))
    assert all(torch.allclose(o, i, atol=1e-5) or torch.allclose(o, i.flip(2), atol=1e-5) for o, i in zip(flipped, x))
