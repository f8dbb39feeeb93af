"""The leakage check: which submitted images are copies of test images?

A submitted image is *leaked* when it is much closer to some test image than to any training
image: a near copy of a test image (flipped, shifted or cropped by a few pixels, brightness,
contrast or colour changed, noise added, re-quantised, or stored as normalised floats) is close to
that test image and, like every test image, far from the training set; a real training image is at
distance 0 from the training set, and a synthetic image is about as far from both. So the test
is a ratio, in the manner of Lowe's ratio test, and real training images that happen to
near-duplicate test images never count.

Distance: 1 - the correlation of two images after each channel of each is centred and each image
scaled to unit variance (so brightness, contrast and colour offsets do not change it, and colour
gains change it little), taken at the
best alignment over horizontal flips and integer shifts of up to `max_shift` pixels, on the
region where the two images overlap.

Two stages keep the cost at a small fraction of one training run: (1) *retrieval*: every image
is reduced to a blurred `coarse_size` x `coarse_size` descriptor, and for each submitted image
(both flips, and the shifts that move the coarse grid by about half a cell) the `candidates`
nearest test images and nearest training images are found with one matrix product per variant;
(2) *verification*: the exact aligned distance to each candidate, at full resolution.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

EPS = 1e-6
EXHAUSTIVE_PIXEL_PAIRS = 1 << 27  # below this N x M x pixels every pair is compared (no retrieval)


@dataclass(frozen=True)
class LeakParams:
    max_shift: int  # pixels of misalignment searched (both axes)
    coarse_size: int  # side of the retrieval descriptor
    candidates: int  # nearest test and nearest training images verified per submitted image
    max_distance: float  # a match is at most this far from its test image ...
    ratio: float  # ... and at most ratio x the distance to the nearest training image
    max_fraction: float  # the set is flagged when more than this fraction of its images match

    def __post_init__(self) -> None:
        problems = [name for name, ok in (
            ("max_shift", 0 <= self.max_shift <= 16), ("coarse_size", 1 <= self.coarse_size <= 64),
            ("candidates", 1 <= self.candidates <= 256), ("max_distance", 0 < self.max_distance <= 1),
            ("ratio", 0 < self.ratio <= 1), ("max_fraction", 0 <= self.max_fraction < 1)) if not ok]
        if problems:
            raise ValueError(f"leakage parameter out of range: {', '.join(problems)}")


@dataclass(frozen=True)
class Match:
    image: int  # index in the submitted set
    test_image: int  # index in the test set
    distance: float  # to that test image
    train_distance: float  # to the nearest training image found


@dataclass(frozen=True)
class LeakReport:
    checked: int  # images compared
    matches: tuple[Match, ...]
    flagged: bool
    seconds: float

    @property
    def matched(self) -> int:
        return len(self.matches)


def _standardize(x: Tensor) -> Tensor:
    """Float N x C x H x W: each channel of each image centred (brightness and colour offsets
    removed), each image scaled to unit variance (contrast removed). Channels are not scaled
    apart: a nearly flat channel would otherwise weigh its noise as much as the others' content."""
    x = x.float()
    x = x - x.mean(dim=(2, 3), keepdim=True)
    return x / (x.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt() + EPS)


def _unit_rows(x: Tensor) -> Tensor:
    flat = x.flatten(1)
    return flat / (flat.norm(dim=1, keepdim=True) + EPS)


def _coarse(images: Tensor, size: int) -> Tensor:
    """Blurred, standardised, at most size x size descriptors as unit rows (N x 3 size^2)."""
    x = _standardize(images)
    if x.shape[-1] > size:
        x = F.adaptive_avg_pool2d(x, size)
    return _unit_rows(_standardize(x))


def _zoom(images: Tensor, side: int) -> Tensor:
    """Images resized to side x side (antialiased bilinear)."""
    return F.interpolate(images, size=(side, side), mode="bilinear", align_corners=False, antialias=True)


def _views(images: Tensor, max_shift: int, step: int = 1) -> list[Tensor]:
    """What a copy of a reference image's central (R - 2 max_shift) crop may look like in the
    submitted image: a window at each shift (both flips), or the whole image scaled down (a copy
    that was cropped by c pixels a side, then resized back). Every view has the crop's size."""
    size, s = images.shape[-1], max_shift
    inner = size - 2 * s
    shifts = sorted({0, -s, s, *range(-s, s + 1, step)})
    out = []
    for flipped in (images, images.flip(-1)):
        out += [flipped[..., s + dy:s + dy + inner, s + dx:s + dx + inner] for dy in shifts for dx in shifts]
        for c in range(1, s + 1):  # cropped by c a side and resized: the crop's centre, scaled
            scaled = _zoom(flipped, size - 2 * c)
            m = s - c
            out.append(scaled[..., m:m + inner, m:m + inner])
    return out


def _center(images: Tensor, max_shift: int) -> Tensor:
    s = max_shift
    return images[..., s:images.shape[-2] - s, s:images.shape[-1] - s] if s else images


def _nearest(queries: list[Tensor], refs: Tensor, k: int, chunk: int) -> Tensor:
    """Indices (N x k) of the refs most similar to any view of each query (unit rows)."""
    n, k, device = queries[0].shape[0], min(k, refs.shape[0]), queries[0].device
    top_val = torch.empty((n, 0), device=device)
    top_idx = torch.empty((n, 0), dtype=torch.long, device=device)
    for start in range(0, refs.shape[0], chunk):
        part = refs[start:start + chunk].to(device).T
        sims = queries[0] @ part
        for q in queries[1:]:
            torch.maximum(sims, q @ part, out=sims)
        val, idx = sims.topk(min(k, sims.shape[1]), dim=1)
        top_val, order = torch.cat([top_val, val], 1).topk(min(k, top_val.shape[1] + val.shape[1]), dim=1)
        top_idx = torch.cat([top_idx, idx + start], 1).gather(1, order)
    return top_idx


def _alignments(h: int, w: int, max_shift: int):
    """Every way a submitted image a may sit on a reference image b: (flip, window of a, window
    of b) for each shift (the region where they overlap), or (flip, side, window of b) for a copy
    cropped by c pixels a side and resized back (a is scaled down to the crop's side)."""
    for flip in (False, True):
        for dy in range(-max_shift, max_shift + 1):
            for dx in range(-max_shift, max_shift + 1):
                # the content at (y, x) of the copy is b's at (y - dy, x - dx)
                yield (flip, (slice(max(dy, 0), h + min(dy, 0)), slice(max(dx, 0), w + min(dx, 0))),
                       (slice(max(-dy, 0), h + min(-dy, 0)), slice(max(-dx, 0), w + min(-dx, 0))))
        for c in range(1, max_shift + 1):
            yield flip, h - 2 * c, (slice(c, h - c), slice(c, w - c))


def _place(a: Tensor, flip: bool, window) -> Tensor:
    a = a.flip(-1) if flip else a
    return _zoom(a, window) if isinstance(window, int) else a[..., window[0], window[1]]


def _rows(x: Tensor) -> Tensor:
    return _unit_rows(_standardize(x))


def distances(images: Tensor, refs: Tensor, max_shift: int, chunk: int = 4096) -> Tensor:
    """N x M: 1 - correlation of every image with every ref at their best alignment (exhaustive)."""
    h, w = images.shape[-2:]
    images = images.float()
    best = torch.full((len(images), len(refs)), -2.0, device=images.device)
    for flip, wa, wb in _alignments(h, w, max_shift):
        qa = _rows(_place(images, flip, wa))
        for start in range(0, len(refs), chunk):
            part = best[:, start:start + chunk]
            ref = refs[start:start + chunk, :, wb[0], wb[1]].to(images.device).float()
            torch.maximum(part, qa @ _rows(ref).T, out=part)
    return 1 - best


def aligned_distance(a: Tensor, b: Tensor, max_shift: int) -> Tensor:
    """1 - correlation of a[i] and b[i] (N x 3 x H x W) at their best alignment (pairwise)."""
    h, w = a.shape[-2:]
    a, b = a.float(), b.to(a.device).float()
    best = torch.full((a.shape[0],), -2.0, device=a.device)
    for flip, wa, wb in _alignments(h, w, max_shift):
        torch.maximum(best, (_rows(_place(a, flip, wa)) * _rows(b[..., wb[0], wb[1]])).sum(1), out=best)
    return 1 - best


def _candidate_distances(images: Tensor, refs: Tensor, params: LeakParams, views: list[Tensor] | None,
                         chunk: int) -> Tensor:
    """N x K distances to the refs: all of them when that is cheap, else the retrieved candidates."""
    n, m, pixels = len(images), len(refs), images.shape[-1] * images.shape[-2]
    if n * m * pixels <= EXHAUSTIVE_PIXEL_PAIRS:
        return distances(images, refs, params.max_shift)
    coarse = torch.cat([_coarse(_center(refs[i:i + chunk].to(images.device).float(), params.max_shift),
                                params.coarse_size) for i in range(0, m, chunk)])
    cand = _nearest(views, coarse, params.candidates, chunk)
    k = cand.shape[1]
    flat = aligned_distance(images.float().repeat_interleave(k, dim=0), refs[cand.flatten().cpu()], params.max_shift)
    return torch.stack([flat.view(n, k), cand.float()])  # distances, and which refs they are


def check_leakage(images: Tensor, labels: Tensor, test_images: Tensor, test_labels: Tensor,
                  train_images: Tensor, params: LeakParams, chunk: int = 8192) -> LeakReport:
    """Compare a submitted image set (uint8 N x 3 x H x W, with its labels) with the test and
    training sets. A match: its nearest test image (at the best alignment) has its label, is at
    most max_distance away, and at most ratio x the distance to the nearest training image."""
    started = time.perf_counter()
    with torch.no_grad():
        views = None
        if len(images) * len(train_images) * images.shape[-1] * images.shape[-2] > EXHAUSTIVE_PIXEL_PAIRS:
            step = max(1, images.shape[-1] // (2 * params.coarse_size))  # finer shifts barely move the descriptor
            views = [_coarse(v, params.coarse_size) for v in _views(images.float(), params.max_shift, step)]
        d_test, test_idx = _split(_candidate_distances(images, test_images, params, views, chunk))
        d_train, _ = _split(_candidate_distances(images, train_images, params, views, chunk))
    best_test, which = d_test.cpu().clamp_min(0).min(dim=1)  # rounding can make an exact copy's distance -1e-7
    matched_test = test_idx.cpu().gather(1, which[:, None]).flatten()
    nearest_train = d_train.cpu().clamp_min(0).min(dim=1).values
    leaked = ((best_test <= params.max_distance) & (best_test < params.ratio * nearest_train)
              & (test_labels[matched_test] == labels.cpu()))
    matches = tuple(Match(i, int(matched_test[i]), float(best_test[i]), float(nearest_train[i]))
                    for i in leaked.nonzero().flatten().tolist())
    flagged = len(matches) > params.max_fraction * len(images)
    return LeakReport(len(images), matches, flagged, time.perf_counter() - started)


def _split(out: Tensor) -> tuple[Tensor, Tensor]:
    """(distances N x K, ref indices N x K) from either branch of _candidate_distances."""
    if out.dim() == 3:
        return out[0], out[1].long()
    return out, torch.arange(out.shape[1], device=out.device).expand(out.shape[0], -1)
