"""Conversions between uint8 RGB images and the normalised float inputs of the ConvNet."""
from __future__ import annotations

import torch
from torch import Tensor


def _stats(mean, std, like: Tensor) -> tuple[Tensor, Tensor]:
    m = torch.tensor(mean, dtype=torch.float32, device=like.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=like.device).view(1, -1, 1, 1)
    return m, s


def normalize(images: Tensor, mean, std) -> Tensor:
    """uint8 0-255 -> float32 (x/255 - mean) / std, as ToTensor + Normalize do."""
    m, s = _stats(mean, std, images)
    return (images.float() / 255.0 - m) / s


def denormalize(images: Tensor, mean, std) -> Tensor:
    """Normalised float -> float in 0-255 units (not rounded, not clipped)."""
    m, s = _stats(mean, std, images)
    return (images.float() * s + m) * 255.0


def to_uint8(images: Tensor, mean, std) -> Tensor:
    """Normalised float -> uint8 0-255 (rounded and clipped), e.g. for image grids."""
    return denormalize(images, mean, std).round().clamp(0, 255).to(torch.uint8)
