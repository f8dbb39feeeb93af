"""Everything about a fixed-IPC submission that can be checked without training."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from evaluator.data import get_info
from evaluator.errors import ImageFileError
from evaluator.files import ImageSet, load_image_set
from evaluator.normalize import denormalize
from evaluator.softlabels import load_soft_labels, stored_bytes, stored_keys
from evaluator.tensorfile import open_tensor_file

from .errors import SubmissionError
from .protocol import Protocol
from .submission import Submission

# A pre-normalised image set has per-channel statistics near mean 0, std 1. Distilled images
# stray from that, but images saved in [0, 1], in 0-255 or in ZCA space stray much further.
MAX_ABS_MEAN = 1.0
STD_RANGE = (0.3, 3.0)


@dataclass
class DatasetCheck:
    dataset: str
    file: Path | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    images: int = 0
    ipc: int = 0
    labels: str = ""  # soft-label: stored | online


@dataclass(frozen=True)
class SoftSet:
    """A soft-label submission's labels: stored distributions, or the teacher's online."""
    mode: str  # stored | online
    targets: torch.Tensor | None  # stored: float N x C
    label_bytes: int  # the soft labels as stored (online: 0)
    hard_label_bytes: int  # the hard labels as stored (the official layout: 0, implied)
    image_bytes: int
    temperature: float  # the protocol's


def normalisation_warning(path: Path, images: torch.Tensor) -> str | None:
    """Warn when float images do not look normalised with the dataset statistics."""
    if images.dtype == torch.uint8:
        return None
    lo, hi = float(images.min()), float(images.max())
    if lo >= 0 and (hi <= 1 or hi > 10):  # normalised images are negative where the pixels are dark
        scale = "[0, 1]" if hi <= 1 else "0-255"
        return (f"{path.name}: every value lies in {scale} ({lo:.2f} to {hi:.2f}); normalised images have negative "
                f"values where pixels are dark, and images in {scale} score near chance: save (x - mean) / std "
                f"with the dataset statistics, or uint8 images")
    mean = images.mean(dim=(0, 2, 3))
    std = images.std(dim=(0, 2, 3))
    if mean.abs().max() <= MAX_ABS_MEAN and STD_RANGE[0] <= std.min() and std.max() <= STD_RANGE[1]:
        return None
    fmt = lambda t: "(" + ", ".join(f"{v:.2f}" for v in t.tolist()) + ")"  # noqa: E731
    return (f"{path.name}: per-channel mean {fmt(mean)}, std {fmt(std)} are far from a normalised dataset's "
            f"(about 0 and 1); images in [0,1], 0-255 or ZCA space score near chance: save (x - mean) / std "
            f"with the dataset statistics, or uint8 images")


def _check_float_range(path: Path, image_set: ImageSet, dataset: str, protocol: Protocol) -> None:
    """Float images, converted back to pixels, may leave [0, 1] by at most `excursion` of the
    range: far outside it, an image can carry a test image that its clipped preview (and the
    leakage check) would not show."""
    excursion = protocol.max_float_excursion
    pixels = denormalize(image_set.images, *protocol.stats(dataset)) / 255
    lo, hi = float(pixels.min()), float(pixels.max())
    if lo < -excursion or hi > 1 + excursion:
        raise SubmissionError(f"{path}: images span {lo:.2f} to {hi:.2f} of the pixel range once the {dataset} "
                              f"normalisation is undone; at most {-excursion:g} to {1 + excursion:g} is accepted: "
                              f"clip them, or save uint8 images (were they saved in 0-255 rather than normalised "
                              f"with the dataset statistics?)")


def check_fixed_ipc(sub: Submission, dataset: str, protocol: Protocol) -> tuple[ImageSet, DatasetCheck]:
    """Load and check one dataset file; raises SubmissionError with a one-line reason."""
    info = get_info(dataset)
    path = sub.data_file(dataset)
    check = DatasetCheck(dataset, path)
    try:
        image_set = load_image_set(path, info.num_classes, info.resolution, protocol.fixed_ipc * info.num_classes)
    except ImageFileError as exc:
        raise SubmissionError(str(exc)) from None
    counts = image_set.class_counts(info.num_classes)
    want = protocol.fixed_ipc
    off = (counts != want).nonzero().flatten().tolist()
    if off:
        c = off[0]
        raise SubmissionError(f"{path}: class {c} has {int(counts[c])} images; the fixed-IPC track needs exactly "
                              f"{want} per class ({want * info.num_classes} images)")
    if not image_set.is_uint8 and protocol.leakage is not None:
        _check_float_range(path, image_set, dataset, protocol)
    warning = normalisation_warning(path, image_set.images)
    if warning:
        check.warnings.append(warning)
    check.images, check.ipc = len(image_set.labels), want
    return image_set, check


def check_soft_label(sub: Submission, dataset: str, protocol: Protocol) -> tuple[ImageSet, DatasetCheck, SoftSet]:
    """A soft-label file: its images as a fixed-IPC file's, then its soft labels (stored) or their
    absence (teacher); raises SubmissionError with a one-line reason."""
    if protocol.soft_labels is None:
        raise SubmissionError(f"{sub.folder}: protocol {protocol.label} has no soft-label division; use version 7 or later")
    image_set, check = check_fixed_ipc(sub, dataset, protocol)
    try:
        tf = open_tensor_file(check.file)  # the table of contents again: the soft labels are checked apart
        keys, n = stored_keys(tf), len(image_set.labels)
        if sub.labels == "teacher" and keys:
            raise SubmissionError(f"{tf.path}: holds {', '.join(keys)} but submission.yaml says labels: teacher (the "
                                  f"harness's teacher labels online); remove them, or say labels: stored")
        rules = protocol.soft_labels
        targets = load_soft_labels(tf, n, get_info(dataset).num_classes, rules.tolerance, rules.top_k_min) \
            if sub.labels == "stored" else None
    except ImageFileError as exc:
        raise SubmissionError(str(exc)) from None
    hard = stored_bytes(tf, ("labels",)) if "labels" in tf.entries else 0
    images = stored_bytes(tf, ("images",)) if tf.top == "dict" else stored_bytes(tf, ("",))
    check.labels = "stored" if targets is not None else "online"
    soft = SoftSet(check.labels, targets, stored_bytes(tf, keys) if targets is not None else 0, hard, images,
                   protocol.soft_labels.temperature)
    return image_set, check, soft


def validate_submission(sub: Submission, datasets: tuple[str, ...], protocol: Protocol) -> list[DatasetCheck]:
    """Check every dataset entered (fixed-IPC files); errors are collected, not raised."""
    checks = []
    for dataset in datasets:
        if sub.track == "generative":
            checks.append(DatasetCheck(dataset))
            continue
        try:
            check = check_soft_label if sub.track == "soft-label" else check_fixed_ipc
            checks.append(check(sub, dataset, protocol)[1])
        except SubmissionError as exc:
            checks.append(DatasetCheck(dataset, error=str(exc)))
    return checks
