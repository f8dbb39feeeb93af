"""Sample image grids: one PNG per submission and dataset, linked from the leaderboard.

The page only needs the file names; torch is imported where a grid is drawn, so that `bench
leaderboard` starts without it."""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from evaluator.atomic import atomic_write

if TYPE_CHECKING:
    from torch import Tensor

MAX_CLASSES = 10
PER_CLASS = 10
MIN_PIXELS = 32


def grid_name(team: str, dataset: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", team)
    return f"{slug}-{dataset}.png"


def leak_grid_name(team: str, dataset: str) -> str:
    return grid_name(team, dataset).removesuffix(".png") + "-leaks.png"


def sample_grid(images: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """uint8 3 x H x W: one row per class (the first MAX_CLASSES), its first PER_CLASS images."""
    import torch
    from torchvision.utils import make_grid

    rows = []
    for c in range(min(num_classes, MAX_CLASSES)):
        members = images[labels == c][:PER_CLASS]
        blank = torch.full((PER_CLASS - len(members), *images.shape[1:]), 255, dtype=torch.uint8)
        rows.append(torch.cat([members, blank]))
    batch = _upscaled(torch.cat(rows).float())
    return make_grid(batch, nrow=PER_CLASS, padding=2, pad_value=255).round().clamp(0, 255).to(torch.uint8)


def _upscaled(batch: Tensor) -> Tensor:
    """Small images (digits) upscaled so they can be seen."""
    import torch.nn.functional as F

    if batch.shape[-1] < MIN_PIXELS:
        batch = F.interpolate(batch, scale_factor=MIN_PIXELS // batch.shape[-1], mode="nearest")
    return batch


def pair_grid(submitted: Tensor, test: Tensor) -> Tensor:
    """uint8 3 x H x W: up to PER_CLASS x MAX_CLASSES / 2 pairs, each submitted image followed by
    the test image it matches."""
    import torch
    from torchvision.utils import make_grid

    n = min(len(submitted), PER_CLASS * MAX_CLASSES // 2)
    batch = torch.stack([submitted[:n], test[:n]], dim=1).flatten(0, 1).float()
    return make_grid(_upscaled(batch), nrow=PER_CLASS, padding=2, pad_value=255).round().clamp(0, 255).to(torch.uint8)


def _save_png(path: Path, grid: Tensor) -> None:
    from PIL import Image

    pixels = grid.permute(1, 2, 0).numpy()
    atomic_write(path, lambda tmp: Image.fromarray(pixels).save(tmp, format="PNG"))


def save_grid(path: Path, images: Tensor, labels: Tensor, num_classes: int) -> None:
    _save_png(path, sample_grid(images, labels, num_classes))


def save_pairs(path: Path, submitted: Tensor, test: Tensor) -> None:
    _save_png(path, pair_grid(submitted, test))
