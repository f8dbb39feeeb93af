"""`photodigits`: scikit-learn's 8x8 digits blended into patches of photographs, in colour.

Built on the machine, in a few seconds, from two things scikit-learn installs: the 1,797
handwritten digits (`load_digits`) and its two sample photographs (`load_sample_images`: a
Chinese temple and a flower). In the manner of MNIST-M (Ganin & Lempitsky, ICML 2015), which
blends MNIST over BSDS500 patches, every image is one digit blended into a photograph patch, so
a classifier must learn what a digit looks like whatever the background: ten random images per
class cover little of that variety, the whole training set (12 backgrounds per digit) much more.

Construction (all randomness from one numpy PCG64 generator seeded with SEED, in this order):
1. The split of `digits`: in every class, a permutation picks TEST_PER_CLASS test digits.
2. For each split (train, then test), every digit is used COPIES[split] times. For each image:
   a photograph (uniform), a patch side 8*s with s uniform in PATCH_SCALES, its top-left corner
   uniform within the photograph; the patch is averaged down to 8x8 (s x s blocks).
3. MNIST-M's blend: pixel = |patch - 255 * a| per channel, a = digit intensity / 16 (the digit
   inverts the colours under it), rounded to uint8.

Decoding the JPEG photographs is Pillow's work, and the arithmetic is numpy float64: a different
Pillow or numpy could, in principle, give other bytes. The protocol records the digest of the
result (`data.photodigits`) and the harness refuses data that does not match it.
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
COPIES = {"train": 12, "test": 2}
PATCH_SCALES = tuple(range(10, 31))  # patch side 80..240 px of a 427 x 640 photograph
RESOLUTION = 8


def _patches(photos: list[np.ndarray], rng: np.random.Generator, n: int) -> np.ndarray:
    """n patches averaged down to 8x8, n x 8 x 8 x 3 (float64, exact: block sums of integers)."""
    which, scale, top, left = (np.empty(n, dtype=np.int64) for _ in range(4))
    for i in range(n):  # the draws, one image after another
        which[i] = int(rng.integers(len(photos)))
        scale[i] = PATCH_SCALES[int(rng.integers(len(PATCH_SCALES)))]
        side = RESOLUTION * scale[i]
        top[i] = int(rng.integers(0, photos[which[i]].shape[0] - side + 1))
        left[i] = int(rng.integers(0, photos[which[i]].shape[1] - side + 1))
    out = np.empty((n, RESOLUTION, RESOLUTION, 3))
    steps = np.arange(RESOLUTION + 1)
    for k, photo in enumerate(photos):
        table = np.zeros((photo.shape[0] + 1, photo.shape[1] + 1, 3))  # summed-area table
        table[1:, 1:] = photo.cumsum(0).cumsum(1)
        sel = np.flatnonzero(which == k)
        ys = top[sel, None] + scale[sel, None] * steps  # block edges, m x 9
        xs = left[sel, None] + scale[sel, None] * steps
        y0, y1 = ys[:, :-1, None], ys[:, 1:, None]
        x0, x1 = xs[:, None, :-1], xs[:, None, 1:]
        sums = table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]
        out[sel] = sums / (scale[sel] ** 2)[:, None, None, None]
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
        pixels = np.rint(np.abs(patch - 255.0 * a)).clip(0, 255).astype(np.uint8)
        out[split] = (torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous(),
                      torch.from_numpy(labels.astype(np.int64)))
    return out
