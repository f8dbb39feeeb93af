"""CIFAR-10 and CIFAR-100 from the original "python version" archives.

CIFAR-100 classes are the 100 fine labels in the archive's own (alphabetical) order:
apple, aquarium_fish, baby, bear, … (`meta` -> `fine_label_names`).
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import DatasetError
from ._sources import SourceTree, load_numpy_pickle

LAYOUT = {
    "cifar10": dict(top="cifar-10-python", alt_top="cifar-10-batches-py",
                    train=[f"data_batch_{i}" for i in range(1, 6)], test=["test_batch"],
                    meta="batches.meta", names_key="label_names", labels_key="labels"),
    "cifar100": dict(top="cifar-100-python", alt_top="cifar-100-python",
                     train=["train"], test=["test"],
                     meta="meta", names_key="fine_label_names", labels_key="fine_labels"),
}


def _batches(tree: SourceTree, members: list[str], labels_key: str) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = [], []
    for member in members:
        batch = load_numpy_pickle(tree.read(member), f"{tree.path}:{member}")
        try:
            data = np.asarray(batch["data"], dtype=np.uint8)
            images.append(data.reshape(-1, 3, 32, 32))
            labels.append(np.asarray(batch[labels_key], dtype=np.int64))
        except (KeyError, ValueError) as exc:
            raise DatasetError(f"{tree.path}:{member}: malformed batch ({exc}); re-download the archive") from None
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))


def read_cifar(name: str, path) -> dict:
    spec = LAYOUT[name]
    tree = SourceTree(path, spec["top"])
    if not tree.has(spec["meta"]):
        tree = SourceTree(path, spec["alt_top"])  # torchvision unpacks CIFAR-10 as cifar-10-batches-py
    meta = load_numpy_pickle(tree.read(spec["meta"]), f"{tree.path}:{spec['meta']}")
    classes = tuple(str(c) for c in meta[spec["names_key"]])
    train_x, train_y = _batches(tree, spec["train"], spec["labels_key"])
    test_x, test_y = _batches(tree, spec["test"], spec["labels_key"])
    return dict(classes=classes, train=(train_x, train_y), test=(test_x, test_y))
