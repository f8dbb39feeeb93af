"""`digits`: scikit-learn's bundled 8x8 handwritten digits, embedded (no download).

1,797 grey images with values 0..16, scaled to uint8 0..255 and repeated over 3 channels.
Fixed stratified split: in every class, a permutation from numpy's PCG64 seeded with 0 picks
TEST_PER_CLASS test images; the rest (1,297) is the training set.
"""
from __future__ import annotations

import numpy as np
import torch

CLASSES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TEST_PER_CLASS = 50
SPLIT_SEED = 0


def load_digits_splits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    grey = np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)  # N x 8 x 8
    images = torch.from_numpy(np.repeat(grey[:, None], 3, axis=1))  # N x 3 x 8 x 8
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    rng = np.random.default_rng(SPLIT_SEED)
    is_test = np.zeros(len(labels), dtype=bool)
    for c in range(len(CLASSES)):
        members = np.flatnonzero(bunch.target == c)
        is_test[rng.permutation(members)[:TEST_PER_CLASS]] = True
    test = torch.from_numpy(is_test)
    return images[~test], labels[~test], images[test], labels[test]
