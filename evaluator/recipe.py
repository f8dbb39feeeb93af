"""What the core needs to know of the protocol: the recipe (optimizer, schedule, batches,
augmentation), the precisions, the networks that can be named and the leakage check's parameters.
Values come from the versioned protocol file (benchmark/protocols/); the core holds no defaults of
its own, so a score depends on nothing the protocol version does not name. This module imports
nothing heavy: the command line reads it to build its help.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass

from .errors import ArchitectureError

DSA_OPS = ("color", "crop", "cutout", "flip", "scale", "rotate")
OPTIMIZERS = ("sgd",)
# "official-step": passes 0..E; after pass E//2+1 the learning rate is multiplied by `decay_factor`
# and the optimizer is created anew (its momentum restarts at zero), as the organisers' loop does.
SCHEDULES = ("official-step",)
PRECISIONS = ("fp32", "bf16")
CHALLENGE = "convnet"  # the challenge's network (ConvNetD3-W128); its score is the challenge's
ARCHITECTURES = ("convnet", "resnet18", "vgg11", "alexnet", "vit")  # built by evaluator.archs
TIMM_PREFIX = "timm:"


def check_name(name: str) -> str:
    """The name, if it is a known architecture or timm:<name>; else a one-line error."""
    if name in ARCHITECTURES or (name.startswith(TIMM_PREFIX) and len(name) > len(TIMM_PREFIX)):
        return name
    close = difflib.get_close_matches(name, ARCHITECTURES, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise ArchitectureError(f"--arch {name}: unknown architecture; {hint}known: {', '.join(ARCHITECTURES)}, "
                            f"cross (the unseen set) or timm:<any timm model>")


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


@dataclass(frozen=True)
class LeakParams:
    max_shift: int  # pixels of misalignment searched (both axes)
    coarse_size: int  # side of the retrieval descriptor
    candidates: int  # nearest test and nearest training images verified per submitted image
    max_distance: float  # a match is at most this far from its test image ...
    ratio: float  # ... and at most ratio x the distance to the nearest training image
    blend_ratio: float  # a blend: a test and a training image leave at most this x what two training images leave
    max_fraction: float  # the set is flagged when more than this fraction of its images match

    def __post_init__(self) -> None:
        problems = [name for name, ok in (
            ("max_shift", 0 <= self.max_shift <= 16), ("coarse_size", 1 <= self.coarse_size <= 64),
            ("candidates", 1 <= self.candidates <= 256), ("max_distance", 0 < self.max_distance <= 1),
            ("ratio", 0 < self.ratio <= 1),
            ("blend_ratio", 0 < self.blend_ratio <= 1), ("max_fraction", 0 <= self.max_fraction < 1)) if not ok]
        if problems:
            raise ValueError(f"leakage parameter out of range: {', '.join(problems)}")


SOFT_LOSSES = ("kl",)  # T^2 x KL(target || softmax(logits / T)) (evaluator.softlabels)
TOP_K_RESTS = ("uniform",)  # how a stored top-k's missing mass is spread over the other classes


@dataclass(frozen=True)
class SoftLabelParams:
    """The soft-label division (from version 7): the objective, and the harness's teacher, trained
    on the whole training split with the protocol's recipe."""
    loss: str
    temperature: float
    tolerance: float  # a stored distribution must sum to 1 within this
    top_k_min: int  # a stored top-k holds at least this many classes per image
    top_k_rest: str  # and its missing mass is spread so (TOP_K_RESTS)
    teacher_arch: str
    teacher_epochs: dict  # dataset -> epochs on its whole training split
    teacher_seed: int

    def __post_init__(self) -> None:
        if self.loss not in SOFT_LOSSES:
            raise ValueError(f"soft-label loss {self.loss!r} is not one of {SOFT_LOSSES}")
        if self.top_k_rest not in TOP_K_RESTS or self.top_k_min < 1:
            raise ValueError(f"top_k: rest must be one of {TOP_K_RESTS} and min at least 1")
        check_name(self.teacher_arch)
