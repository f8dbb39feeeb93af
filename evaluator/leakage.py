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

from .recipe import LeakParams

EPS = 1e-6
TOLERANCE = 1e-4  # distances this close are equal (float rounding): an exact training image never matches
EXHAUSTIVE_PIXEL_PAIRS = 1 << 27  # below this N x M x pixels every pair is compared (no retrieval)


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


def _window_alignments(h: int, max_shift: int):
    """Shift and flip alignments in the frame of the submitted image's central crop: (flip,
    window of the reference image) such that the crop of the (flipped) copy shows that window."""
    inner = h - 2 * max_shift
    for flip in (False, True):
        for dy in range(-max_shift, max_shift + 1):
            for dx in range(-max_shift, max_shift + 1):
                yield flip, (slice(max_shift - dy, max_shift - dy + inner), slice(max_shift - dx, max_shift - dx + inner))


def _gain(e: Tensor, r1: Tensor, win: Tensor) -> Tensor:
    """How much of x a window w adds to its nearest training image r1 (unit rows): the squared
    correlation of x's residual e with the part of w not already in r1."""
    er, rr = (e * win).sum(-1), (r1 * win).sum(-1)
    return er * er / (1 - rr * rr).clamp_min(1e-3)


def aligned_windows(e: Tensor, r1: Tensor, b: Tensor, max_shift: int) -> tuple[Tensor, Tensor]:
    """For each (e[i], r1[i], b[i]) — e: a submitted image's residual after its nearest training
    image r1 (unit rows, central-crop frame) — the window of b, over flips and shifts, that adds
    most to r1 in explaining the image, as a unit row in that frame (flipped back where the
    alignment flips); and its gain."""
    b = b.to(e.device).float()
    best, out = torch.full((len(e),), -1.0, device=e.device), torch.zeros_like(e)
    for flip, (wy, wx) in _window_alignments(b.shape[-1], max_shift):
        win = b[..., wy, wx]
        win = _rows(win.flip(-1) if flip else win)
        gain = _gain(e, r1, win)
        better = gain > best
        best = torch.where(better, gain, best)
        out[better] = win[better]
    return out, best


def window_gains(e: Tensor, r1: Tensor, refs: Tensor, max_shift: int, chunk: int = 4096) -> Tensor:
    """N x M: the best gain of a window of each ref over flips and shifts (exhaustive)."""
    best = torch.full((len(e), len(refs)), -1.0, device=e.device)
    for flip, (wy, wx) in _window_alignments(refs.shape[-1], max_shift):
        for start in range(0, len(refs), chunk):
            win = refs[start:start + chunk, :, wy, wx].to(e.device).float()
            w = _rows(win.flip(-1) if flip else win)
            er, rr = e @ w.T, r1 @ w.T
            part = best[:, start:start + chunk]
            torch.maximum(part, er * er / (1 - rr * rr).clamp_min(1e-3), out=part)
    return best


def _best_window(a: Tensor, b: Tensor, max_shift: int) -> Tensor:
    """The window of b best correlated with a's central crop (over flips and shifts), in a's frame."""
    crop = _rows(_center(a.float(), max_shift))
    b = b.to(a.device).float()
    best, out = torch.full((len(a),), -2.0, device=a.device), torch.zeros_like(crop)
    for flip, (wy, wx) in _window_alignments(a.shape[-1], max_shift):
        win = b[..., wy, wx]
        win = _rows(win.flip(-1) if flip else win)
        corr = (crop * win).sum(1)
        better = corr > best
        best = torch.where(better, corr, best)
        out[better] = win[better]
    return out


def _coarse_refs(refs: Tensor, s: int, coarse_size: int, device, chunk: int) -> Tensor:
    """The retrieval descriptors of a reference set's central crops (computed once per set)."""
    return torch.cat([_coarse(_center(refs[i:i + chunk].to(device).float(), s), coarse_size)
                      for i in range(0, len(refs), chunk)])


def _candidates(images: Tensor, refs: Tensor, k: int, s: int, views: list[Tensor] | None, coarse: Tensor | None,
                chunk: int) -> Tensor:
    """N x k indices of the refs nearest each image: every pair compared when cheap (views None),
    else retrieved with the coarse descriptors."""
    if views is None:
        return distances(images, refs, s).topk(min(k, len(refs)), dim=1, largest=False).indices
    return _nearest(views, coarse, k, chunk)


def _verified(images: Tensor, refs: Tensor, cand: Tensor, s: int, batch: int = 256) -> tuple[Tensor, Tensor]:
    """(N x k aligned distances, N x k x D aligned central windows) of each image's candidates,
    computed a batch of images at a time (memory follows the batch, not the set)."""
    n, k = cand.shape
    dist, wins = [], []
    for i in range(0, n, batch):
        a = images[i:i + batch].float().repeat_interleave(k, dim=0)
        b = refs[cand[i:i + batch].flatten().cpu()].to(a.device)
        dist.append(aligned_distance(a, b, s).view(-1, k))
        wins.append(_best_window(a, b, s).view(-1, k, a.shape[1] * (a.shape[-1] - 2 * s) ** 2))
    return torch.cat(dist), torch.cat(wins)


def _pair_residuals(x: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """1 - R^2 of each x (N x D, unit rows) fitted by each pair (a_i, b_j) (N x ka x D, N x kb x D,
    unit rows): N x ka x kb. A degenerate pair (a_i = b_j) counts as a single image."""
    xa, xb = (a @ x[:, :, None])[..., 0], (b @ x[:, :, None])[..., 0]  # N x ka, N x kb
    ab = a @ b.transpose(1, 2)  # N x ka x kb
    xa, xb = xa[:, :, None], xb[:, None, :]
    det = 1 - ab * ab
    explained = (xa * xa + xb * xb - 2 * xa * xb * ab) / det.clamp_min(1e-6)
    single = torch.maximum(xa * xa, xb * xb)
    explained = torch.where(det > 1e-4, explained, single).clamp(0, 1)
    return 1 - explained


def _second(e: Tensor, r1: Tensor, refs: Tensor, s: int, coarse: Tensor | None, params: LeakParams,
            chunk: int, near: Tensor, batch: int = 256) -> tuple[Tensor, Tensor]:
    """For each image: the aligned window (unit row) of the ref that, with its nearest training
    image r1, explains it best, and which ref. Every ref is compared when cheap (coarse None);
    else the candidates are the image's own nearest refs (`near`) and those nearest its residual e
    by the coarse descriptor."""
    if coarse is None:
        which = window_gains(e, r1, refs, s, chunk).argmax(dim=1)
    else:
        side = refs.shape[-1] - 2 * s
        crops = e.view(len(e), refs.shape[1], side, side)
        views = [_coarse(crops, params.coarse_size), _coarse(crops.flip(-1), params.coarse_size)]
        cand = torch.cat([_nearest(views, coarse, params.candidates, chunk), near.to(e.device)], dim=1)
        k, picks = cand.shape[1], []
        for i in range(0, len(e), batch):  # memory follows the batch, not the set
            c = cand[i:i + batch]
            _, gain = aligned_windows(e[i:i + batch].repeat_interleave(k, dim=0),
                                      r1[i:i + batch].repeat_interleave(k, dim=0), refs[c.flatten().cpu()], s)
            picks.append(c.gather(1, gain.view(-1, k).argmax(dim=1, keepdim=True)).flatten())
        which = torch.cat(picks)
    wins = torch.cat([aligned_windows(e[i:i + batch], r1[i:i + batch], refs[which[i:i + batch].cpu()], s)[0]
                      for i in range(0, len(e), batch)])
    return wins, which


def _as_distance(residual: Tensor) -> Tensor:
    """1 - the multiple correlation: comparable with max_distance (1 - correlation)."""
    return 1 - (1 - residual).clamp_min(0).sqrt()


def check_leakage(images: Tensor, labels: Tensor, test_images: Tensor, test_labels: Tensor,
                  train_images: Tensor, params: LeakParams, chunk: int = 8192) -> LeakReport:
    """Compare a submitted image set (N x 3 x H x W in pixel units, 0-255: uint8, or the floats
    actually trained on, converted back but neither rounded nor clipped) with the test and training
    sets. An image matches (a) when its nearest test image (at the best alignment) has its label,
    is at most max_distance away, and closer than ratio x the distance to the nearest training
    image; or (b) when it is a blend: its nearest training image and a test image of its label
    together explain it (at most max_distance left), far better (blend_ratio) than that training
    image and any other training image do."""
    started = time.perf_counter()
    s = min(params.max_shift, images.shape[-1] // 4)  # small images: the crop keeps half the side
    k = params.candidates
    with torch.no_grad():
        views = coarse_test = coarse_train = None
        if len(images) * len(train_images) * images.shape[-1] * images.shape[-2] > EXHAUSTIVE_PIXEL_PAIRS:
            step = max(1, images.shape[-1] // (2 * params.coarse_size))  # finer shifts barely move the descriptor
            views = [_coarse(v, params.coarse_size) for v in _views(images.float(), s, step)]
            coarse_test = _coarse_refs(test_images, s, params.coarse_size, images.device, chunk)
            coarse_train = _coarse_refs(train_images, s, params.coarse_size, images.device, chunk)
        test_idx = _candidates(images, test_images, k, s, views, coarse_test, chunk)
        train_idx = _candidates(images, train_images, 2 * k, s, views, coarse_train, chunk)
        d_test, w_test = _verified(images, test_images, test_idx, s)
        d_train, w_train = _verified(images, train_images, train_idx, s)
        x = _rows(_center(images.float(), s))
        r1 = w_train[torch.arange(len(x)), d_train.argmin(dim=1)]  # the nearest training image, aligned
        residual = _unit_rows(x - (x * r1).sum(1, keepdim=True) * r1)  # what it leaves unexplained
        second_test, which_second = _second(residual, r1, test_images, s, coarse_test, params, chunk, test_idx)
        second_train, _ = _second(residual, r1, train_images, s, coarse_train, params, chunk, train_idx)
        blend_test = _as_distance(_pair_residuals(x, r1[:, None], second_test[:, None]))[:, 0, 0]
        blend_train = _as_distance(_pair_residuals(x, r1[:, None], second_train[:, None]))[:, 0, 0]
    d_test, d_train, test_idx = d_test.cpu().clamp_min(0), d_train.cpu().clamp_min(0), test_idx.cpu()
    best_test, which = d_test.min(dim=1)  # clamped: rounding can make an exact copy's distance -1e-7
    matched_test = test_idx.gather(1, which[:, None]).flatten()
    nearest_train = d_train.min(dim=1).values
    single = (best_test <= params.max_distance) & (best_test + TOLERANCE < params.ratio * nearest_train)
    best_blend, best_train_pair = blend_test.cpu().clamp_min(0), blend_train.cpu().clamp_min(0)
    blend_test_image = which_second.cpu()
    blend = (best_blend <= params.max_distance) & (best_blend + TOLERANCE < params.blend_ratio * best_train_pair) & ~single
    labels = labels.cpu()
    single &= test_labels[matched_test] == labels
    blend &= test_labels[blend_test_image] == labels
    matches = tuple(Match(i, int(matched_test[i]), float(best_test[i]), float(nearest_train[i])) if single[i] else
                    Match(i, int(blend_test_image[i]), float(best_blend[i]), float(best_train_pair[i]))
                    for i in (single | blend).nonzero().flatten().tolist())
    flagged = len(matches) > params.max_fraction * len(images)
    return LeakReport(len(images), matches, flagged, time.perf_counter() - started)
