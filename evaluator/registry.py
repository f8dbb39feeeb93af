"""The datasets the harness knows: name, classes, resolution, normalisation. Imports nothing heavy
(the command line reads it for its help and checks); loading is `evaluator.data`."""
from __future__ import annotations

import difflib
from dataclasses import dataclass

from . import classnames
from .errors import DatasetError


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    num_classes: int
    resolution: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    challenge: bool  # one of the ECCV 2024 challenge datasets
    embedded: bool  # ships with the harness, nothing to download
    known_classes: tuple[str, ...] | None = None  # names fixed by the archive
    built: bool = False  # made on this machine from installed packages, cached like a download


REGISTRY: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo("digits", "scikit-learn digits (8x8)", 10, 8, (0.3057,) * 3, (0.3761,) * 3,
                    challenge=False, embedded=True),
        DatasetInfo("photodigits", "digits over photographs (8x8, colour)", 10, 8, (0.4309, 0.4055, 0.3933),
                    (0.319, 0.2618, 0.2814), challenge=False, embedded=False, built=True),
        DatasetInfo("cifar10", "CIFAR-10", 10, 32, (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010),
                    challenge=False, embedded=False, known_classes=classnames.CIFAR10),
        DatasetInfo("cifar100", "CIFAR-100", 100, 32, (0.5071, 0.4866, 0.4409), (0.2673, 0.2564, 0.2762),
                    challenge=True, embedded=False, known_classes=classnames.CIFAR100),
        DatasetInfo("tinyimagenet", "Tiny-ImageNet-200", 200, 64, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225),
                    challenge=True, embedded=False),
    )
}
CHALLENGE_DATASETS = tuple(n for n, i in REGISTRY.items() if i.challenge)


def get_info(name: str) -> DatasetInfo:
    if name not in REGISTRY:
        close = difflib.get_close_matches(name, REGISTRY, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise DatasetError(f"unknown dataset '{name}'; {hint}known: {', '.join(REGISTRY)}")
    return REGISTRY[name]
