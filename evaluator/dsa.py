"""DSA augmentation in single-operation mode, vectorised over the batch (docs/PROTOCOL.md).

For every batch ONE operation is picked uniformly from the protocol's ops; its random parameters
are drawn independently for every image, with the protocol's magnitudes (`DsaParams`). All random
draws use the generator passed in, on the data's device, so augmentation never synchronises with
the host. The operation itself is chosen on
the host (`choose_op`) from a CPU generator: that costs no device round trip either.
"""
from __future__ import annotations

import contextlib
import contextvars
import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .recipe import DsaParams


def crop_shift(size: int, p: DsaParams) -> int:
    """Largest translation of `crop`: 4 pixels at 32 px, 8 at 64 px with the challenge's 0.125."""
    return int(size * p.crop + 0.5)


def cutout_side(size: int, p: DsaParams) -> int:
    return int(size * p.cutout + 0.5)


_SHARED = contextvars.ContextVar("dsa_shared", default=False)


@contextlib.contextmanager
def shared_parameters():
    """DSA's Siamese mode, for distillation (never for evaluation): within this block an operation
    draws ONE set of parameters for the whole batch, so two batches augmented from generators with
    the same seed get the same transformation (Zhao & Bilen, ICML 2021)."""
    token = _SHARED.set(True)
    try:
        yield
    finally:
        _SHARED.reset(token)


def _draws(x: Tensor) -> int:
    return 1 if _SHARED.get() else x.shape[0]


def _uniform(x: Tensor, gen: torch.Generator | None, *shape: int) -> Tensor:
    return torch.rand(_draws(x), *shape, generator=gen, device=x.device, dtype=torch.float32)


def _randint(x: Tensor, gen: torch.Generator | None, low: int, high: int) -> Tensor:
    return torch.randint(low, high, (_draws(x),), generator=gen, device=x.device)


def brightness(x: Tensor, p: DsaParams, gen: torch.Generator | None = None) -> Tensor:
    return x + (_uniform(x, gen, 1, 1, 1).to(x.dtype) - 0.5) * p.brightness


def saturation(x: Tensor, p: DsaParams, gen: torch.Generator | None = None) -> Tensor:
    mean = x.mean(dim=1, keepdim=True)  # per pixel, over channels
    return (x - mean) * (_uniform(x, gen, 1, 1, 1).to(x.dtype) * p.saturation) + mean


def contrast(x: Tensor, p: DsaParams, gen: torch.Generator | None = None) -> Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # per image
    return (x - mean) * (_uniform(x, gen, 1, 1, 1).to(x.dtype) + p.contrast) + mean


def color(x: Tensor, p: DsaParams, gen: torch.Generator | None = None) -> Tensor:
    return contrast(saturation(brightness(x, p, gen), p, gen), p, gen)


def crop(x: Tensor, p: DsaParams, gen: torch.Generator | None = None) -> Tensor:
    """Translate by integer (ty, tx) in [-s, s]; pixels shifted in from outside are zero."""
    n, _, h, w = x.shape
    ty = _randint(x, gen, -crop_shift(h, p), crop_shift(h, p) + 1)
    tx = _randint(x, gen, -crop_shift(w, p), crop_shift(w, p) + 1)
    rows = torch.arange(h, device=x.device).unsqueeze(0) + ty.unsqueeze(1)  # n x h
    cols = torch.arange(w, device=x.device).unsqueeze(0) + tx.unsqueeze(1)  # n x w
    inside = ((rows >= 0) & (rows < h)).unsqueeze(2) & ((cols >= 0) & (cols < w)).unsqueeze(1)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    # Advanced indices around a slice put the indexed dims first: n x h x w x c.
    moved = x[batch, :, rows.clamp(0, h - 1).unsqueeze(2), cols.clamp(0, w - 1).unsqueeze(1)]
    return moved.permute(0, 3, 1, 2) * inside.unsqueeze(1).to(x.dtype)


def cutout(x: Tensor, p: DsaParams, gen: torch.Generator | None = None) -> Tensor:
    """Zero a square of side int(0.5*size+0.5) centred uniformly at random, clipped at the border."""
    _, _, h, w = x.shape
    side_h, side_w = cutout_side(h, p), cutout_side(w, p)
    cy = _randint(x, gen, 0, h + (1 - side_h % 2))
    cx = _randint(x, gen, 0, w + (1 - side_w % 2))
    top, left = cy - side_h // 2, cx - side_w // 2
    rows = torch.arange(h, device=x.device).unsqueeze(0)
    cols = torch.arange(w, device=x.device).unsqueeze(0)
    in_rows = (rows >= top.unsqueeze(1)) & (rows < (top + side_h).unsqueeze(1))
    in_cols = (cols >= left.unsqueeze(1)) & (cols < (left + side_w).unsqueeze(1))
    keep = ~(in_rows.unsqueeze(2) & in_cols.unsqueeze(1))
    return x * keep.unsqueeze(1).to(x.dtype)


def flip(x: Tensor, p: DsaParams, gen: torch.Generator | None = None) -> Tensor:
    return torch.where(_uniform(x, gen, 1, 1, 1) < p.flip, x.flip(3), x)


def _affine(x: Tensor, theta: Tensor) -> Tensor:
    theta = theta.to(x.dtype).expand(x.shape[0], 2, 3)  # one theta for all in shared mode
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def scale_factors(x: Tensor, p: DsaParams, gen: torch.Generator | None) -> tuple[Tensor, Tensor]:
    lo = 1.0 / p.scale
    return _uniform(x, gen) * (p.scale - lo) + lo, _uniform(x, gen) * (p.scale - lo) + lo


def scale(x: Tensor, p: DsaParams, gen: torch.Generator | None = None) -> Tensor:
    sx, sy = scale_factors(x, p, gen)
    zero = torch.zeros_like(sx)
    theta = torch.stack([torch.stack([sx, zero, zero], 1), torch.stack([zero, sy, zero], 1)], 1)
    return _affine(x, theta)


def rotation_angles(x: Tensor, p: DsaParams, gen: torch.Generator | None) -> Tensor:
    return (_uniform(x, gen) - 0.5) * 2 * math.radians(p.rotate)


def rotate(x: Tensor, p: DsaParams, gen: torch.Generator | None = None) -> Tensor:
    a = rotation_angles(x, p, gen)
    cos, sin, zero = torch.cos(a), torch.sin(a), torch.zeros_like(a)
    theta = torch.stack([torch.stack([cos, sin, zero], 1), torch.stack([-sin, cos, zero], 1)], 1)
    return _affine(x, theta)


_FUNCTIONS = {"color": color, "crop": crop, "cutout": cutout, "flip": flip, "scale": scale, "rotate": rotate}


def choose_op(p: DsaParams, host_gen: torch.Generator) -> str:
    """Pick the batch's operation uniformly on the host (a CPU generator: no device sync)."""
    return p.ops[int(torch.randint(len(p.ops), (1,), generator=host_gen))]


def augment(x: Tensor, op: str, p: DsaParams, gen: torch.Generator | None = None) -> Tensor:
    """Apply one DSA operation with per-image random parameters; keeps x's memory format."""
    out = _FUNCTIONS[op](x, p, gen)
    if x.is_contiguous(memory_format=torch.channels_last):
        out = out.contiguous(memory_format=torch.channels_last)
    return out
