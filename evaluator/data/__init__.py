"""Datasets of the harness: the registry, the prepared uint8 cache, and loading.

    from evaluator.data import load_dataset
    ds = load_dataset("cifar100", Path("datasets"))      # test split (and train if prepared)
    x = ds.normalize(ds.test_images)                      # model input

`digits` is embedded (scikit-learn); `photodigits` is built from scikit-learn's data into the
cache on first use; the others are read from their original archives by `prepare_dataset`
(which downloads them, md5-verified, when no source is given).
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import Tensor

from ..errors import DatasetError
from ..normalize import denormalize, normalize
from ..registry import CHALLENGE_DATASETS, REGISTRY, DatasetInfo, get_info  # noqa: F401  (re-exported)
from . import _cache


@dataclass(frozen=True)
class Dataset:
    info: DatasetInfo
    classes: tuple[str, ...]
    test_images: Tensor  # uint8 N x 3 x H x W
    test_labels: Tensor  # int64
    train_images: Tensor | None = None
    train_labels: Tensor | None = None
    meta: dict = field(default_factory=dict)

    def normalize(self, images: Tensor) -> Tensor:
        return normalize(images, self.info.mean, self.info.std)

    @cached_property
    def normalized_test(self) -> Tensor:
        """The test images as model input, computed once per object."""
        return self.normalize(self.test_images)

    @property
    def smallest_class(self) -> int:
        """The fewest training images of any class: the IPC of the whole training split."""
        return int(torch.bincount(self.train_labels, minlength=self.info.num_classes).min())

    @cached_property
    def test_digest(self) -> str:
        """Which test set this is (an imported reference file changes it); hashed once per object."""
        return tensor_digest(self.test_images, self.test_labels)


def tensor_digest(*tensors: Tensor) -> str:
    """sha256 over the bytes of CPU tensors."""
    digest = hashlib.sha256()
    for t in tensors:
        digest.update(np.ascontiguousarray(t.numpy()).tobytes())
    return digest.hexdigest()


def cache_dir(data_dir: Path, name: str) -> Path:
    return Path(data_dir) / "cache" / name


def missing_message(name: str) -> str:
    return (f"dataset '{name}' is not prepared; fetch it with: bench data download {name} "
            f"(or bench data prepare {name} --from ARCHIVE_OR_REFERENCE_PT)")


def load_dataset(name: str, data_dir: Path, need_train: bool = False) -> Dataset:
    info = get_info(name)
    if info.embedded:
        from ._digits import CLASSES, load_digits_splits

        tr_x, tr_y, te_x, te_y = load_digits_splits()
        return Dataset(info, CLASSES, te_x, te_y, tr_x, tr_y, {"source": "scikit-learn load_digits"})
    where = cache_dir(data_dir, name)
    if info.built and not (where / "test.safetensors").is_file():
        build_dataset(name, data_dir)
    test = _cache.read_split(where, "test")
    train = _cache.read_split(where, "train")
    if test is None or (need_train and train is None):
        raise DatasetError(missing_message(name))
    meta = _cache.read_meta(where)
    classes = tuple(meta.get("classes") or info.known_classes or (f"class_{i:03d}" for i in range(info.num_classes)))
    tr_x, tr_y = train if train is not None else (None, None)
    return Dataset(info, classes, test[0], test[1], tr_x, tr_y, meta)


def read_manifest(data_dir: Path) -> dict:
    path = Path(data_dir) / "manifest.yaml"
    if not path.is_file():
        raise DatasetError(f"{path}: dataset manifest missing; restore it from the repository (git checkout datasets/)")
    return yaml.safe_load(path.read_text()) or {}


def prepare_dataset(name: str, data_dir: Path, source: Path | None = None) -> str:
    """Build the cache from an archive, its unpacked folder, or a challenge reference test file;
    download the archive (md5-checked) when no source is given. Returns a summary line."""
    info = get_info(name)
    if info.embedded:
        return f"{name}: embedded (scikit-learn), nothing to prepare"
    if info.built:
        if source is not None:
            raise DatasetError(f"{name} is built from scikit-learn's data, not read from an archive; drop --from")
        return build_dataset(name, data_dir)
    if source is None:
        from ._sources import download

        entry = read_manifest(data_dir).get(name)
        if not entry:
            raise DatasetError(f"datasets/manifest.yaml: no entry for '{name}'; add url, filename and md5")
        source = download(entry["url"], Path(data_dir) / "raw", entry["filename"], entry["md5"], name)
    source = Path(source)
    if not source.exists():
        raise DatasetError(f"{source}: not found; pass the original archive, its folder, or a reference *_test.pt")
    if source.suffix in (".pt", ".pth"):
        return import_reference(name, source, data_dir)
    parts = _read_archive(name, source)
    classes = parts["classes"]
    if len(classes) != info.num_classes:
        raise DatasetError(f"{source}: {len(classes)} classes found, {name} has {info.num_classes}; is this the original archive?")
    if info.known_classes is not None and tuple(classes) != info.known_classes:
        raise DatasetError(f"{source}: class names differ from the known {name} order; is this the original archive?")
    where = cache_dir(data_dir, name)
    for split in ("train", "test"):
        images, labels = parts[split]
        _check_split(source, info, images, labels, split)
        _cache.write_split(where, split, images, labels)
    meta = {"name": name, "classes": list(classes), "train_source": str(source), "test_source": str(source),
            "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if "wnids" in parts:
        meta["wnids"] = list(parts["wnids"])
    _cache.write_meta(where, meta)
    return f"{name}: prepared {len(parts['train'][1])} train and {len(parts['test'][1])} test images into {where}"


def build_dataset(name: str, data_dir: Path) -> str:
    """Build a dataset made from installed packages (`photodigits`) into its cache."""
    from ._photodigits import CLASSES, build_splits

    where = cache_dir(data_dir, name)
    splits = build_splits()
    for split, (images, labels) in splits.items():
        _check_split(Path(f"<{name} builder>"), get_info(name), images, labels, split)
        _cache.write_split(where, split, images, labels)
    _cache.write_meta(where, {"name": name, "classes": list(CLASSES), "source": "built from scikit-learn "
                              "load_digits and load_sample_images (evaluator/data/_photodigits.py)",
                              "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return (f"{name}: built {len(splits['train'][1])} train and {len(splits['test'][1])} test images "
            f"into {where}")


def data_digest(ds: Dataset) -> str:
    """sha256 of the training and test splits (images and labels), as protocols record it."""
    if ds.train_images is None:
        raise DatasetError(f"{ds.info.name}: the training split is not prepared; prepare the dataset again")
    return tensor_digest(ds.train_images, ds.train_labels, ds.test_images, ds.test_labels)


def _read_archive(name: str, source: Path) -> dict:
    if name in ("cifar10", "cifar100"):
        from ._cifar import read_cifar

        return read_cifar(name, source)
    from ._tinyimagenet import read_tinyimagenet

    return read_tinyimagenet(source)


def _check_split(source: Path, info: DatasetInfo, images: Tensor, labels: Tensor, split: str) -> None:
    shape = (3, info.resolution, info.resolution)
    if images.dtype != torch.uint8 or tuple(images.shape[1:]) != shape or len(images) != len(labels):
        raise DatasetError(f"{source}: {split} split has images {tuple(images.shape)} {images.dtype}; expected N x {shape} uint8")
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= info.num_classes):
        raise DatasetError(f"{source}: {split} labels outside 0..{info.num_classes - 1}; is this the original archive?")


def read_reference_test(path: Path) -> tuple[Tensor, Tensor]:
    """The challenge's reference_data/<name>_test.pt: {'images_val': float N x 3 x H x W
    (pre-normalised), 'labels_val': N}. Loaded with weights_only=True."""
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DatasetError(f"{path}: reference file not found; pass the path of reference_data/<dataset>_test.pt") from None
    except Exception as exc:
        raise DatasetError(f"{path}: cannot load as a reference test file ({' '.join(str(exc).split())[:120]})") from None
    if not isinstance(obj, dict) or "images_val" not in obj or "labels_val" not in obj:
        raise DatasetError(f"{path}: not a challenge reference file; expected a dict with 'images_val' and 'labels_val'")
    images, labels = obj["images_val"], torch.as_tensor(obj["labels_val"])
    if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[1] != 3 or not images.is_floating_point():
        raise DatasetError(f"{path}: 'images_val' must be a float tensor N x 3 x H x W")
    if labels.dim() != 1 or labels.shape[0] != images.shape[0] or labels.is_floating_point():
        raise DatasetError(f"{path}: 'labels_val' must hold one integer label per image")
    return images.float(), labels.long()


def match_reference(images: Tensor, labels: Tensor) -> DatasetInfo | None:
    """The registered dataset with this resolution and class count, if any."""
    classes, res = int(labels.max()) + 1, images.shape[-1]
    for info in REGISTRY.values():
        if info.resolution == res and info.num_classes == classes:
            return info
    return None


ROUND_TRIP_TOLERANCE = 0.05  # grey levels


def import_reference(name: str, path: Path, data_dir: Path) -> str:
    """Store a reference test file as the dataset's test split (uint8, exact round trip)."""
    info = get_info(name)
    images, labels = read_reference_test(path)
    if images.shape[-1] != info.resolution or int(labels.max()) >= info.num_classes:
        raise DatasetError(f"{path}: images are {images.shape[-1]} px with labels up to {int(labels.max())}; "
                           f"not a {name} reference file ({info.resolution} px, {info.num_classes} classes)")
    pixels = denormalize(images, info.mean, info.std)
    uint8 = pixels.round().clamp(0, 255)
    err = float((pixels - uint8).abs().max())  # ~1e-4 for uint8 images normalised with these statistics
    if err > ROUND_TRIP_TOLERANCE:
        raise DatasetError(f"{path}: images are not uint8 images normalised with the {name} statistics "
                           f"(round-trip error {err:.2f} grey levels); check the file")
    where = cache_dir(data_dir, name)
    _cache.write_split(where, "test", uint8.to(torch.uint8), labels)
    meta = _cache.read_meta(where)
    meta.pop("format_version", None)
    meta.update(name=name, test_source=str(path), test_imported_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
    meta.setdefault("classes", list(info.known_classes) if info.known_classes else None)
    _cache.write_meta(where, meta)
    return f"{name}: imported {len(labels)} reference test images from {path} into {where}"


def dataset_status(name: str, data_dir: Path) -> dict:
    info = get_info(name)
    if info.embedded:
        return {"train": True, "test": True, "where": "embedded"}
    where = cache_dir(data_dir, name)
    return {"train": (where / "train.safetensors").is_file(), "test": (where / "test.safetensors").is_file(),
            "where": str(where)}
