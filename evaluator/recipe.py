"""What a training run needs to know of the protocol: the recipe (optimizer, schedule, batches,
augmentation). Values come from the versioned protocol file (benchmark/protocols/); the core
holds no defaults of its own, so a score depends on nothing the protocol version does not name.
"""
from __future__ import annotations

from dataclasses import dataclass

DSA_OPS = ("color", "crop", "cutout", "flip", "scale", "rotate")
OPTIMIZERS = ("sgd",)
# "official-step": passes 0..E; after pass E//2+1 the learning rate is multiplied by `decay_factor`
# and the optimizer is created anew (its momentum restarts at zero), as the organisers' loop does.
SCHEDULES = ("official-step",)


@dataclass(frozen=True)
class DsaParams:
    """Differentiable Siamese Augmentation, single-operation mode: one op per batch, drawn from
    `ops`; parameters drawn per image. Magnitudes as in Zhao & Bilen (ICML 2021)."""
    ops: tuple[str, ...]
    brightness: float  # x + (u - 0.5) * brightness
    saturation: float  # (x - m) * (u * saturation) + m, m the per-pixel channel mean
    contrast: float  # (x - m) * (u + contrast) + m, m the per-image mean
    crop: float  # largest shift = int(crop * size + 0.5) pixels
    cutout: float  # square side = int(cutout * size + 0.5) pixels
    flip: float  # probability of a horizontal flip
    scale: float  # x and y scale factors ~ U(1/scale, scale)
    rotate: float  # angle ~ U(-rotate, rotate) degrees

    def __post_init__(self) -> None:
        unknown = [op for op in self.ops if op not in DSA_OPS]
        if not self.ops or unknown:
            raise ValueError(f"DSA ops must be a non-empty subset of {DSA_OPS}, got {self.ops}")
        if not 0 <= self.flip <= 1 or self.scale < 1 or not 0 <= self.crop < 1 or not 0 <= self.cutout <= 1:
            raise ValueError(f"DSA magnitudes out of range: flip {self.flip}, scale {self.scale}, "
                             f"crop {self.crop}, cutout {self.cutout}")


@dataclass(frozen=True)
class Recipe:
    optimizer: str
    lr: float
    momentum: float
    weight_decay: float
    batch_size: int
    schedule: str
    decay_factor: float
    augmentation: DsaParams | None  # None: no augmentation

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.optimizer!r} is not one of {OPTIMIZERS}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule {self.schedule!r} is not one of {SCHEDULES}")
        if self.lr <= 0 or self.batch_size < 1 or not 0 <= self.momentum < 1 or self.weight_decay < 0:
            raise ValueError(f"recipe values out of range: lr {self.lr}, batch {self.batch_size}, "
                             f"momentum {self.momentum}, weight decay {self.weight_decay}")
