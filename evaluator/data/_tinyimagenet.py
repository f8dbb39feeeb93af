"""Tiny-ImageNet-200 from the original `tiny-imagenet-200.zip`.

Class order: the 200 WordNet ids sorted (the order torchvision's ImageFolder gives `train/`,
which the distillation codebases use). Class names: the first synonym in `words.txt`.
Test set: the 10,000 labelled `val` images (`val/val_annotations.txt`).
"""
from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from ..errors import DatasetError
from ._sources import SourceTree

RESOLUTION = 64


def _decode(data: bytes, where: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as img:
            arr = np.asarray(img.convert("RGB"), dtype=np.uint8)  # some images are greyscale
    except Exception as exc:
        raise DatasetError(f"{where}: cannot decode image ({exc}); re-download the archive") from None
    if arr.shape != (RESOLUTION, RESOLUTION, 3):
        raise DatasetError(f"{where}: image is {arr.shape[1]}x{arr.shape[0]}, expected 64x64; re-download the archive")
    return arr


def _stack(arrays: list[np.ndarray], labels: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return images, torch.tensor(labels, dtype=torch.int64)


def read_tinyimagenet(path) -> dict:
    tree = SourceTree(path, "tiny-imagenet-200")
    wnids = sorted(line.strip() for line in tree.read("wnids.txt").decode().splitlines() if line.strip())
    index = {w: i for i, w in enumerate(wnids)}
    words = {}
    for line in tree.read("words.txt").decode().splitlines():
        wnid, _, text = line.partition("\t")
        words[wnid.strip()] = text.split(",")[0].strip()
    classes = tuple(words.get(w, w) for w in wnids)

    arrays, labels = [], []
    for name in tree.names():
        parts = name.split("/")  # train/<wnid>/images/<file>.JPEG
        if len(parts) == 4 and parts[0] == "train" and parts[2] == "images" and parts[3].upper().endswith(".JPEG"):
            if parts[1] not in index:
                raise DatasetError(f"{tree.path}: train folder '{parts[1]}' is not in wnids.txt; re-download the archive")
            arrays.append(_decode(tree.read(name), name))
            labels.append(index[parts[1]])
    if not arrays:
        raise DatasetError(f"{tree.path}: no train/<wnid>/images/*.JPEG found; is this tiny-imagenet-200?")
    train = _stack(arrays, labels)

    arrays, labels = [], []
    for line in tree.read("val/val_annotations.txt").decode().splitlines():
        fields = line.split("\t")
        if len(fields) < 2:
            continue
        if fields[1] not in index:
            raise DatasetError(f"{tree.path}: val image {fields[0]} has unknown class '{fields[1]}'; re-download the archive")
        arrays.append(_decode(tree.read(f"val/images/{fields[0]}"), fields[0]))
        labels.append(index[fields[1]])
    return dict(classes=classes, wnids=tuple(wnids), train=train, test=_stack(arrays, labels))
