"""`photodigits`: scikit-learn's 8x8 digits drawn in colour over patches of photographs.

Built on the machine, in under a second, from two things scikit-learn installs: the 1,797
handwritten digits (`load_digits`) and its two sample photographs (`load_sample_images`: a
Chinese temple and a flower). In the manner of MNIST-M (Ganin & Lempitsky, ICML 2015), which
blends MNIST over BSDS500 patches, every image is one digit over a textured photograph patch, so
a classifier must learn what a digit looks like whatever the background: ten random images per
class cover little of that variety, the whole training set covers much more.

Construction (all randomness from one numpy PCG64 generator seeded with SEED, in this order):
1. The split of `digits`: in every class, a permutation picks TEST_PER_CLASS test digits.
2. For each split (train, then test), every digit is used COPIES[split] times. For each image:
   a photograph (uniform), a patch side 8*s with s uniform in PATCH_SCALES, its top-left corner
   uniform within the photograph; the patch is averaged down to 8x8 (s x s blocks).
3. The digit's colour, per channel: 255 where the patch's mean in that channel is below 128,
   else 0, plus Gaussian noise of std COLOUR_NOISE (drawn for the whole split after its patches).
4. pixel = patch * (1 - a) + colour * a, a = digit intensity / 16, rounded and clipped to uint8.

Decoding the JPEG photographs is Pillow's work, and the arithmetic is numpy float64: a different
Pillow or numpy could, in principle, give other bytes. The protocol records the digest of the
result (`datasets.photodigits.sha256`) and the harness refuses data that does not match it.
"""
from __future__ import annotations

import numpy as np
import torch

from ._digits import (  # the same digits, the same split
    CLASSES,
    SPLIT_SEED,
    TEST_PER_CLASS,
)

SEED = SPLIT_SEED
COPIES = {"train": 3, "test": 2}
PATCH_SCALES = (2, 3, 4, 5, 6)  # patch side 16..48 px of a 427 x 640 photograph
COLOUR_NOISE = 40.0
RESOLUTION = 8


def _patches(photos: list[np.ndarray], rng: np.random.Generator, n: int) -> np.ndarray:
    out = np.empty((n, RESOLUTION, RESOLUTION, 3))
    for i in range(n):
        photo = photos[int(rng.integers(len(photos)))]
        s = int(rng.choice(PATCH_SCALES))
        side = RESOLUTION * s
        top = int(rng.integers(0, photo.shape[0] - side + 1))
        left = int(rng.integers(0, photo.shape[1] - side + 1))
        block = photo[top : top + side, left : left + side]
        out[i] = block.reshape(RESOLUTION, s, RESOLUTION, s, 3).mean(axis=(1, 3))
    return out


def build_splits() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{'train': (uint8 N x 3 x 8 x 8, int64 N), 'test': (...)}; deterministic."""
    from sklearn.datasets import load_digits, load_sample_images

    digits = load_digits()
    photos = [np.asarray(img, dtype=np.float64) for img in load_sample_images().images]
    rng = np.random.default_rng(SEED)
    is_test = np.zeros(len(digits.target), dtype=bool)
    for c in range(len(CLASSES)):
        members = np.flatnonzero(digits.target == c)
        is_test[rng.permutation(members)[:TEST_PER_CLASS]] = True
    alpha = digits.images / 16.0  # N x 8 x 8 in [0, 1]
    out = {}
    for split, members in (("train", ~is_test), ("test", is_test)):
        a = np.repeat(alpha[members], COPIES[split], axis=0)[..., None]  # n x 8 x 8 x 1
        labels = np.repeat(digits.target[members], COPIES[split])
        patch = _patches(photos, rng, len(labels))
        dark = patch.mean(axis=(1, 2), keepdims=True) < 128.0  # n x 1 x 1 x 3
        colour = np.where(dark, 255.0, 0.0) + rng.normal(0.0, COLOUR_NOISE, dark.shape)
        pixels = np.rint(patch * (1.0 - a) + colour * a).clip(0, 255).astype(np.uint8)
        out[split] = (torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous(),
                      torch.from_numpy(labels.astype(np.int64)))
    return out
