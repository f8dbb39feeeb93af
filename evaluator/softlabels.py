"""Soft labels: the targets of the soft-label division, how they are read, and what they cost.

A soft-label image set trains the network towards a class distribution per image instead of a
class index, with the knowledge-distillation objective of Hinton et al. (2015):

    loss = T^2 x KL(p || softmax(z / T))

z the network's logits, T the protocol's temperature, p the target. p is either **stored** in the
submission file, per image, or computed **online** by the harness's teacher on every augmented
batch (p = softmax(teacher logits / T)), as SRe2L and RDED evaluate.

Stored labels, in a .safetensors or torch.save dict next to `images` and `labels`:
- `soft_labels`: float N x C, every row a distribution (non-negative, summing to 1);
- or top-k: `soft_values` (float N x k) and `soft_indices` (integer N x k, distinct classes per
  row); the mass the k values leave (1 - their sum) is spread evenly over the other C - k classes.
Everything is checked from the file's table of contents first, then by value; every refusal is one
line naming the tensor, the problem and the fix.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import ImageFileError
from .files import FLOAT_DTYPES, LABEL_DTYPES
from .tensorfile import TensorFile

FULL, TOP_VALUES, TOP_INDICES = "soft_labels", "soft_values", "soft_indices"
SOFT_KEYS = (FULL, TOP_VALUES, TOP_INDICES)


@dataclass(frozen=True)
class SoftTargets:
    """What one soft-label evaluation trains towards: stored distributions (N x C) or a teacher
    (in eval mode, on the training device), at a temperature."""
    temperature: float
    targets: Tensor | None = None
    teacher: nn.Module | None = None

    def __post_init__(self) -> None:
        if (self.targets is None) == (self.teacher is None):
            raise ValueError("soft targets need exactly one of stored targets and a teacher")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")


def distillation_loss(logits: Tensor, target: Tensor, temperature: float) -> Tensor:
    """T^2 x KL(target || softmax(logits / T)), averaged over the batch (zero-probability classes
    contribute nothing)."""
    log_q = F.log_softmax(logits.float() / temperature, dim=1)
    return F.kl_div(log_q, target.float(), reduction="batchmean") * temperature**2


@torch.no_grad()
def teacher_targets(teacher: nn.Module, x: Tensor, temperature: float) -> Tensor:
    """The teacher's distribution for a batch, at the temperature."""
    return F.softmax(teacher(x).float() / temperature, dim=1)


def stored_keys(tf: TensorFile) -> tuple[str, ...]:
    """The soft-label tensors a file holds (none, `soft_labels`, or the top-k pair)."""
    return tuple(k for k in SOFT_KEYS if k in tf.entries)


def _refuse(tf: TensorFile, message: str) -> ImageFileError:
    return ImageFileError(f"{tf.path}: {message}")


def check_soft_entries(tf: TensorFile, n: int, num_classes: int, min_k: int = 1) -> tuple[str, ...]:
    """From the table of contents: the soft-label tensors, their dtypes and shapes. Returns their
    names; raises ImageFileError."""
    keys = stored_keys(tf)
    if keys not in ((FULL,), (TOP_VALUES, TOP_INDICES)):
        raise _refuse(tf, f"stored soft labels are '{FULL}' (N x {num_classes}) or the pair '{TOP_VALUES}' and "
                          f"'{TOP_INDICES}' (N x k), found {list(keys) or 'none'}; store one of the two")
    for key in keys:
        entry = tf.entries[key]
        if entry is None:
            raise _refuse(tf, f"'{key}' is not a tensor; store a tensor")
        kinds = LABEL_DTYPES if key == TOP_INDICES else FLOAT_DTYPES
        if entry.dtype not in kinds:
            want = "integer class indices" if key == TOP_INDICES else "floating-point probabilities"
            raise _refuse(tf, f"'{key}' has dtype {entry.dtype}; expected {want}")
    width = num_classes if keys == (FULL,) else None
    shapes = {k: tf.entries[k].shape for k in keys}
    for key, shape in shapes.items():
        if len(shape) != 2 or shape[0] != n or (width is not None and shape[1] != width):
            want = f"({n}, {num_classes})" if width else f"({n}, k)"
            raise _refuse(tf, f"'{key}' has shape {tuple(shape)}; expected {want}: one row per image")
    if width is None:
        k = shapes[TOP_VALUES][1]
        if shapes[TOP_INDICES] != shapes[TOP_VALUES] or not min(min_k, num_classes) <= k <= num_classes:
            raise _refuse(tf, f"'{TOP_VALUES}' {tuple(shapes[TOP_VALUES])} and '{TOP_INDICES}' "
                              f"{tuple(shapes[TOP_INDICES])} must have the same shape (N, k), k from "
                              f"{min(min_k, num_classes)} to {num_classes}")
    return keys


def load_soft_labels(tf: TensorFile, n: int, num_classes: int, tolerance: float, min_k: int = 1) -> Tensor:
    """The stored targets as float32 N x C distributions, every value checked (a top-k: at least
    min_k classes, the rest spread evenly); raises ImageFileError."""
    keys = check_soft_entries(tf, n, num_classes, min_k)
    if keys == (FULL,):
        probs = tf.load(FULL).double()
        _check_values(tf, FULL, probs)
        sums = probs.sum(dim=1)
        worst = int((sums - 1).abs().argmax())
        if abs(float(sums[worst]) - 1) > tolerance:
            raise _refuse(tf, f"'{FULL}' row {worst} sums to {float(sums[worst]):.6g}; every row must sum to 1 "
                              f"(within {tolerance:g}): divide each row by its sum")
        return probs.float()
    values, indices = tf.load(TOP_VALUES).double(), tf.load(TOP_INDICES).long()
    _check_values(tf, TOP_VALUES, values)
    if int(indices.min()) < 0 or int(indices.max()) >= num_classes:
        raise _refuse(tf, f"'{TOP_INDICES}' holds {int(indices.min())}..{int(indices.max())}; expected class "
                          f"indices 0..{num_classes - 1}")
    ordered = indices.sort(dim=1).values
    repeats = (ordered[:, 1:] == ordered[:, :-1]).any(dim=1).nonzero().flatten()
    if len(repeats):
        raise _refuse(tf, f"'{TOP_INDICES}' row {int(repeats[0])} names a class twice; each row lists k distinct classes")
    sums = values.sum(dim=1)
    worst = int(sums.argmax())
    if float(sums[worst]) > 1 + tolerance:
        raise _refuse(tf, f"'{TOP_VALUES}' row {worst} sums to {float(sums[worst]):.6g}, more than 1; the top-k "
                          f"probabilities of a distribution sum to at most 1")
    k = values.shape[1]
    rest = (1 - sums).clamp(min=0) / (num_classes - k) if k < num_classes else torch.zeros_like(sums)
    probs = rest[:, None].expand(n, num_classes).clone()
    probs.scatter_(1, indices, values)
    off = int((sums - 1).abs().argmax())
    if k == num_classes and abs(float(sums[off]) - 1) > tolerance:
        raise _refuse(tf, f"'{TOP_VALUES}' lists every class but row {off} sums to {float(sums[off]):.6g}; "
                          f"it must sum to 1 (within {tolerance:g})")
    return probs.float()


def _check_values(tf: TensorFile, key: str, values: Tensor) -> None:
    bad = int((~torch.isfinite(values)).sum())
    if bad:
        raise _refuse(tf, f"'{key}' contains {bad} NaN or infinite values; store probabilities")
    if float(values.min()) < 0:
        raise _refuse(tf, f"'{key}' contains negative values (down to {float(values.min()):.4g}); store "
                          f"probabilities (softmax of the logits), not logits")


def stored_bytes(tf: TensorFile, keys: tuple[str, ...]) -> int:
    """What the named tensors take in the file (their dtype x shape)."""
    return sum(tf.entries[k].nbytes for k in keys)


def forward_flops(model: nn.Module, resolution: int) -> int:
    """Floating-point operations of one forward pass on one image, as PyTorch's FLOP counter
    counts them (2 per multiply-add of convolutions and matrix products; normalisation and
    activations, a few percent of a ConvNet's, are not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    device = next(model.parameters()).device  # wherever the model is now (an online teacher: the training device)
    with torch.no_grad(), counter:
        model(torch.zeros(1, 3, resolution, resolution, device=device))
    model.train(was_training)
    return int(counter.get_total_flops())
