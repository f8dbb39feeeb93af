"""What the leakage check catches: its hit rate on disguised test images, and its matches on
honest image sets, on the embedded digits (8 px, every pair compared) and on digits upscaled to
32 px over a texture (CIFAR's size; exhaustive and retrieval stages both).

    python perf/leakage_hits.py

Each row: a set of 100 images (10 per class; 500 for IPC 50) and how many of them the check
matched, with whether the set would be flagged.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.protocol import load_protocol  # noqa: E402
from evaluator import leakage  # noqa: E402
from evaluator.data import load_dataset  # noqa: E402


def pick(images, labels, ipc, seed=0):
    g = torch.Generator().manual_seed(seed)
    idx = torch.cat([torch.nonzero(labels == c).flatten()[torch.randperm(int((labels == c).sum()), generator=g)[:ipc]]
                     for c in range(int(labels.max()) + 1)])
    return images[idx], labels[idx]


def shifted(x, dy, dx):
    out, (h, w) = torch.zeros_like(x), x.shape[-2:]
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        x[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def u8(x):
    return x.round().clamp(0, 255).to(torch.uint8)


def crop_resized(x, c):
    h = x.shape[-1]
    return u8(F.interpolate(x.float()[..., c:h - c, c:h - c], size=h, mode="bilinear", align_corners=False))


def nearest_training(images, labels, train, train_labels):
    """Each image's nearest training image of its class (plain pixel distance)."""
    out = []
    for image, label in zip(images.float(), labels):
        same = train[train_labels == label].float()
        out.append(same[((same - image) ** 2).flatten(1).sum(1).argmin()])
    return torch.stack(out)


def cases(test, test_labels, train, train_labels):
    t, tl = pick(test, test_labels, 10)
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(t.shape, generator=g) * 8
    r10, rl10 = pick(train, train_labels, 10)
    r50, rl50 = pick(train, train_labels, 50)
    other, _ = pick(train, train_labels, 10, seed=5)
    means = torch.stack([train[train_labels == c].float().mean(0) for c in range(10)]).repeat_interleave(10, 0)
    yield "test images, exact", t, tl
    yield "test, flipped", t.flip(-1), tl
    yield "test, shifted 2 px", shifted(t, 2, 0), tl
    yield "test, shifted 2 px diagonally", shifted(t, -2, 2), tl
    yield "test, brightness +20 %", u8(t.float() * 1.2), tl
    yield "test, brightness -20 %", u8(t.float() * 0.8), tl
    yield "test, Gaussian noise 8/255", u8(t.float() + noise), tl
    yield "test, contrast and colour gains", u8((t.float() - 128) * torch.tensor([0.8, 0.7, 0.9]).view(1, 3, 1, 1) + 140), tl
    yield "test, re-quantised to 8 levels", u8((t.float() / 32).round() * 32), tl
    yield "test, cropped 1 px a side and resized", crop_resized(t, 1), tl
    yield "test, flipped + shifted + brighter + noise", u8(shifted(t.flip(-1), 1, 2).float() * 1.1 + noise), tl
    near = nearest_training(t, tl, train, train_labels)
    yield "test 55 % + nearest training image 45 %", u8(0.55 * t.float() + 0.45 * near), tl
    yield "test 40 % + nearest training image 60 %", u8(0.4 * t.float() + 0.6 * near), tl
    yield "test 50 % + nearest training 50 % + noise 8/255", u8(0.5 * t.float() + 0.5 * near + noise), tl
    yield "random training images, IPC 10", r10, rl10
    yield "random training images, IPC 50", r50, rl50
    yield "training images augmented (flip, shift, noise)", u8(shifted(r10.flip(-1), 1, 1).float() * 1.1 + noise), rl10
    yield "class means (blurry, DM-like)", u8(means), torch.arange(10).repeat_interleave(10)
    yield "blends of two training images", u8((r10.float() + other.float()) / 2), rl10
    yield "blends of two training images, 70/30", u8(0.7 * r10.float() + 0.3 * other.float()), rl10
    yield "uniform noise", torch.randint(0, 256, t.shape, dtype=torch.uint8, generator=g), tl


def main() -> None:
    params = load_protocol().leakage
    ds = load_dataset("digits", None)
    texture = torch.randint(0, 256, (1, 3, 32, 32), generator=torch.Generator().manual_seed(3)).float()
    up = lambda x: u8(F.interpolate(x.float(), size=32, mode="bilinear", align_corners=False) * 0.7 + texture * 0.3)  # noqa: E731
    settings = [("digits 8 px", ds.test_images, ds.train_images, 1 << 60),
                ("32 px exhaustive", up(ds.test_images), up(ds.train_images), 1 << 60),
                ("32 px retrieval", up(ds.test_images), up(ds.train_images), 0)]
    print(f"{'set':<48}" + "".join(f"{name:>20}" for name, *_ in settings))
    results = {}
    for name, test, train, threshold in settings:
        leakage.EXHAUSTIVE_PIXEL_PAIRS = threshold
        for label, images, labels in cases(test, ds.test_labels, train, ds.train_labels):
            r = leakage.check_leakage(images, labels, test, ds.test_labels, train, params)
            results.setdefault(label, []).append(f"{r.matched}/{r.checked}{' F' if r.flagged else ''}")
    for label, cells in results.items():
        print(f"{label:<48}" + "".join(f"{c:>20}" for c in cells))
    print("F: the set is flagged (more than", params.max_fraction, "of its images match)")


if __name__ == "__main__":
    main()
