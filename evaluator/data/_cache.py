"""The prepared cache: datasets/cache/<name>/{train,test}.safetensors (uint8) and meta.json.

Every file is written to a temporary name and renamed, so a crash never leaves half a cache.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..atomic import atomic_write
from ..errors import DatasetError

FORMAT_VERSION = 1


def write_split(cache_dir: Path, split: str, images: torch.Tensor, labels: torch.Tensor) -> None:
    if images.dtype != torch.uint8:
        raise ValueError(f"cache images must be uint8, got {images.dtype}")
    tensors = {"images": images.contiguous(), "labels": labels.to(torch.int64).contiguous()}
    atomic_write(cache_dir / f"{split}.safetensors", lambda p: save_file(tensors, str(p)))


def read_split(cache_dir: Path, split: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    path = cache_dir / f"{split}.safetensors"
    if not path.is_file():
        return None
    try:
        data = load_file(str(path))
        return data["images"], data["labels"]
    except Exception as exc:
        raise DatasetError(f"{path}: corrupt cache file ({exc}); delete it and prepare the dataset again") from None


def write_meta(cache_dir: Path, meta: dict) -> None:
    meta = {"format_version": FORMAT_VERSION, **meta}
    atomic_write(cache_dir / "meta.json", lambda p: p.write_text(json.dumps(meta, indent=2) + "\n"))


def read_meta(cache_dir: Path) -> dict:
    path = cache_dir / "meta.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: unreadable ({exc}); delete it and prepare the dataset again") from None
