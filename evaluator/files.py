"""Image sets in tensor files: fixed-IPC submissions and generator shards.

Accepted layouts:
- official: one tensor N x 3 x H x W (float, pre-normalised with the dataset statistics),
  class-ordered, labels implied by position (N = IPC x classes);
- a dict saved with torch.save, or a .safetensors file, with `images` (uint8 RGB 0-255, or
  float pre-normalised) and `labels` (integer class indices).
Files are untrusted: torch.load(weights_only=True) or safetensors, never a full unpickle.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .errors import ImageFileError, one_line
from .normalize import normalize

SUFFIXES = (".pt", ".pth", ".safetensors")
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


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


def read_tensor_file(path: Path) -> object:
    """Load a .pt/.safetensors file without executing anything it contains."""
    path = Path(path)
    if not path.is_file():
        raise ImageFileError(f"{path}: file not found; put the tensor file there or fix the path")
    if path.suffix not in SUFFIXES:
        raise ImageFileError(f"{path}: unsupported file type '{path.suffix}'; save with torch.save (.pt) or as .safetensors")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refusals, truncated zips, safetensors header errors
        reason = one_line(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, 160)
        raise ImageFileError(
            f"{path}: refused to load ({reason}); save only tensors with torch.save or use .safetensors"
        ) from None


def load_image_set(path: Path, num_classes: int, resolution: int) -> ImageSet:
    """Read and validate an image set for a dataset with num_classes classes at resolution px."""
    path = Path(path)
    obj = read_tensor_file(path)
    if isinstance(obj, Tensor):
        images, labels, layout = obj, _implied_labels(path, obj, num_classes), "official"
    elif isinstance(obj, dict):
        for key in ("images", "labels"):
            if key not in obj:
                raise ImageFileError(f"{path}: missing key '{key}'; a dict file needs 'images' and 'labels'")
            if not isinstance(obj[key], Tensor):
                raise ImageFileError(f"{path}: '{key}' is a {type(obj[key]).__name__}, not a tensor; store a tensor")
        images, labels, layout = obj["images"], obj["labels"], "dict"
    else:
        raise ImageFileError(
            f"{path}: holds a {type(obj).__name__}; expected a tensor or a dict with 'images' and 'labels'")
    return check_image_set(path, images, labels, num_classes, resolution, layout)


def _implied_labels(path: Path, images: Tensor, num_classes: int) -> Tensor:
    n = images.shape[0] if images.dim() > 0 else 0
    if n == 0 or n % num_classes:
        raise ImageFileError(
            f"{path}: {n} images do not split evenly over {num_classes} classes; the official format "
            f"holds IPC x {num_classes} class-ordered images")
    return torch.arange(num_classes).repeat_interleave(n // num_classes)


def check_image_set(path: Path, images: Tensor, labels: Tensor, num_classes: int, resolution: int,
                    layout: str = "dict", require_all_classes: bool = True) -> ImageSet:
    """Shape, dtype, finiteness, label range and (unless a partial set such as a generator shard)
    class coverage."""
    expected = f"N x 3 x {resolution} x {resolution}"
    if images.dim() != 4 or images.shape[1] != 3 or tuple(images.shape[2:]) != (resolution, resolution):
        raise ImageFileError(f"{path}: images have shape {tuple(images.shape)}; expected {expected}")
    if images.shape[0] == 0:
        raise ImageFileError(f"{path}: holds no images; expected {expected} with N > 0")
    if images.dtype != torch.uint8 and images.dtype not in FLOAT_DTYPES:
        raise ImageFileError(
            f"{path}: images have dtype {images.dtype}; expected uint8 (0-255 RGB) or float (pre-normalised)")
    if images.dtype != torch.uint8:
        images = images.float()
        bad = int((~torch.isfinite(images)).sum())
        if bad:
            raise ImageFileError(f"{path}: images contain {bad} NaN or infinite values; save finite values")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise ImageFileError(f"{path}: labels have dtype {labels.dtype}; expected int64 class indices")
    if labels.dim() != 1 or labels.shape[0] != images.shape[0]:
        raise ImageFileError(
            f"{path}: labels have shape {tuple(labels.shape)}; expected one label per image ({images.shape[0]},)")
    labels = labels.long()
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= num_classes:
        raise ImageFileError(
            f"{path}: labels out of range ({lo}..{hi}); expected class indices 0..{num_classes - 1}")
    counts = torch.bincount(labels, minlength=num_classes)
    missing = (counts == 0).nonzero().flatten().tolist()
    if missing and require_all_classes:
        shown = ", ".join(map(str, missing[:5])) + (", …" if len(missing) > 5 else "")
        raise ImageFileError(
            f"{path}: no images for {len(missing)} of {num_classes} classes ({shown}); every class needs images")
    return ImageSet(images=images.contiguous(), labels=labels.contiguous(), layout=layout)
