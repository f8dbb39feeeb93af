"""Image sets in tensor files: fixed-IPC submissions and generator shards.

Accepted layouts:
- official: one tensor N x 3 x H x W (float, pre-normalised with the dataset statistics),
  class-ordered, labels implied by position (N = IPC x classes);
- a dict saved with torch.save, or a .safetensors file, with `images` (uint8 RGB 0-255, or
  float pre-normalised) and `labels` (integer class indices).
Files are untrusted: shapes, dtypes and the image count are checked from the file's table of
contents (`evaluator.tensorfile`) before any image data is read.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .errors import ImageFileError
from .normalize import normalize
from .tensorfile import Entry, TensorFile, open_tensor_file

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
LABEL_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


@dataclass(frozen=True)
class ImageSet:
    images: Tensor  # uint8 (0-255 RGB) or float32 (pre-normalised), N x 3 x H x W
    labels: Tensor  # int64, N
    layout: str  # "official" | "dict"

    @property
    def is_uint8(self) -> bool:
        return self.images.dtype == torch.uint8

    def class_counts(self, num_classes: int) -> Tensor:
        return torch.bincount(self.labels, minlength=num_classes)

    def normalized(self, mean: tuple[float, ...], std: tuple[float, ...]) -> Tensor:
        """Float32 model input: uint8 images are scaled to [0,1] and normalised, floats kept."""
        return normalize(self.images, mean, std) if self.is_uint8 else self.images.float()


def check_entries(tf: TensorFile, resolution: int, max_images: int, uint8_only: bool = False,
                  allow_empty: bool = False) -> tuple[str, str | None]:
    """From the table of contents alone: the names of the images and labels tensors (None: labels
    implied, the official format). Raises ImageFileError with a one-line reason. allow_empty: a
    file of 0 images passes (a generator's shard that holds none)."""
    path = tf.path
    if tf.top == "tensor":
        images, labels = tf.entries[""], None
    elif tf.top == "dict":
        for key in ("images", "labels"):
            if key not in tf.entries:
                raise ImageFileError(f"{path}: missing key '{key}'; a dict file needs 'images' and 'labels'")
            if tf.entries[key] is None:
                raise ImageFileError(f"{path}: '{key}' is not a tensor; store a tensor")
        images, labels = tf.entries["images"], tf.entries["labels"]
    else:
        raise ImageFileError(f"{path}: holds a {tf.top}; expected a tensor or a dict with 'images' and 'labels'")
    _check_images(path, images, resolution, max_images, uint8_only, allow_empty)
    if labels is not None:
        if labels.dtype not in LABEL_DTYPES:
            raise ImageFileError(f"{path}: labels have dtype {labels.dtype}; expected int64 class indices")
        if labels.shape != images.shape[:1]:
            raise ImageFileError(f"{path}: labels have shape {labels.shape}; expected one label per image "
                                 f"({images.shape[0]},)")
    return ("" if labels is None else "images"), (None if labels is None else "labels")


def _check_images(path: Path, images: Entry, resolution: int, max_images: int, uint8_only: bool,
                  allow_empty: bool) -> None:
    expected = f"N x 3 x {resolution} x {resolution}"
    if len(images.shape) != 4 or images.shape[1] != 3 or images.shape[2:] != (resolution, resolution):
        raise ImageFileError(f"{path}: images have shape {images.shape}; expected {expected}")
    if images.shape[0] == 0 and not allow_empty:
        raise ImageFileError(f"{path}: holds no images; expected {expected} with N > 0")
    if images.shape[0] > max_images:
        raise ImageFileError(f"{path}: holds {images.shape[0]} images, more than the {max_images} accepted here; "
                             f"submit only the images that count")
    allowed = (torch.uint8,) if uint8_only else (torch.uint8, *FLOAT_DTYPES)
    if images.dtype not in allowed:
        want = "uint8 RGB images" if uint8_only else "uint8 (0-255 RGB) or float (pre-normalised)"
        raise ImageFileError(f"{path}: images have dtype {images.dtype}; expected {want}")


def load_image_set(path: Path, num_classes: int, resolution: int, max_images: int) -> ImageSet:
    """Read and validate an image set of at most max_images images for a dataset with num_classes
    classes at resolution px; nothing beyond the table of contents is read before the checks."""
    tf = open_tensor_file(Path(path))
    images_name, labels_name = check_entries(tf, resolution, max_images)
    images = tf.load(images_name)
    if labels_name is None:
        labels, layout = _implied_labels(tf.path, images, num_classes), "official"
    else:
        labels, layout = tf.load(labels_name), "dict"
    return check_image_set(tf.path, images, labels, num_classes, layout)


def _implied_labels(path: Path, images: Tensor, num_classes: int) -> Tensor:
    n = images.shape[0]
    if n % num_classes:
        raise ImageFileError(
            f"{path}: {n} images do not split evenly over {num_classes} classes; the official format "
            f"holds IPC x {num_classes} class-ordered images")
    return torch.arange(num_classes).repeat_interleave(n // num_classes)


def check_labels(path: Path, labels: Tensor, num_classes: int) -> Tensor:
    """int64 labels, each a class index."""
    labels = labels.long()
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= num_classes:
        raise ImageFileError(f"{path}: labels out of range ({lo}..{hi}); expected class indices 0..{num_classes - 1}")
    return labels


def check_image_set(path: Path, images: Tensor, labels: Tensor, num_classes: int,
                    layout: str = "dict") -> ImageSet:
    """Values: finite images, labels in range, every class present."""
    if images.dtype != torch.uint8:
        images = images.float()
        bad = int((~torch.isfinite(images)).sum())
        if bad:
            raise ImageFileError(f"{path}: images contain {bad} NaN or infinite values; save finite values")
    labels = check_labels(path, labels, num_classes)
    counts = torch.bincount(labels, minlength=num_classes)
    missing = (counts == 0).nonzero().flatten().tolist()
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (", …" if len(missing) > 5 else "")
        raise ImageFileError(
            f"{path}: no images for {len(missing)} of {num_classes} classes ({shown}); every class needs images")
    return ImageSet(images=images.contiguous(), labels=labels.contiguous(), layout=layout)
