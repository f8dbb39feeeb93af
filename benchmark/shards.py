"""A generator's shards become one image set: IPC = the smallest per-class count.

Each shard's table of contents is checked first (uint8 N x 3 x R x R images, one integer label
per image; a shard of N = 0 passes the same checks, then counts as no images), then only the
labels are read; the images kept — the first `IPC` of every class in write order, IPC capped at
the protocol's max_ipc — are the only image data ever read, so memory follows the accepted set,
not what the generator wrote.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from evaluator.data import Dataset
from evaluator.errors import ImageFileError
from evaluator.files import check_entries, check_labels
from evaluator.tensorfile import open_tensor_file

from .errors import SubmissionError


@dataclass(frozen=True)
class GeneratedSet:
    images: torch.Tensor  # uint8, IPC images per class, write order kept
    labels: torch.Tensor
    ipc: int
    generated: int
    dropped: int


def collect(shards: tuple[Path, ...], ds: Dataset, max_ipc: int, max_images: int) -> GeneratedSet:
    """max_images: the most images all shards together may hold (their labels are read in full)."""
    files, labels, total = [], [], 0
    for path in shards:
        try:
            tf = open_tensor_file(path)
            if tf.top != "dict":
                raise ImageFileError(f"{path.name}: a shard needs 'images' and 'labels' tensors")
            check_entries(tf, ds.info.resolution, max_images - total, uint8_only=True, allow_empty=True)
            if tf.entries["images"].shape[0] == 0:
                continue
            files.append(tf)
            labels.append(check_labels(Path(path.name), tf.load("labels"), ds.info.num_classes))
        except ImageFileError as exc:
            raise SubmissionError(str(exc).replace(str(path), path.name)) from None
        total += len(labels[-1])
    all_labels = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.int64)
    counts = torch.bincount(all_labels, minlength=ds.info.num_classes)
    smallest = int(counts.argmin())
    if counts[smallest] == 0:
        raise SubmissionError(f"the generator produced no image of class {smallest} ('{ds.classes[smallest]}'); "
                              f"IPC would be 0: every class needs images")
    ipc = min(int(counts.min()), max_ipc)
    keep = torch.cat([torch.nonzero(all_labels == c).flatten()[:ipc] for c in range(ds.info.num_classes)]).sort().values
    images, start = [], 0
    for tf, shard_labels in zip(files, labels):
        rows = keep[(keep >= start) & (keep < start + len(shard_labels))] - start
        if len(rows):
            images.append(tf.load("images", rows))
        start += len(shard_labels)
    return GeneratedSet(torch.cat(images), all_labels[keep], ipc, total, total - len(keep))
