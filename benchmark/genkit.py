"""Helpers for generator authors (generative track): the protocol's arguments, the clock, and
an atomic shard writer.

    from benchmark.genkit import ShardWriter, parse_args, time_left

    args = parse_args()                     # --dataset --num-classes --resolution --classes --out ...
    writer = ShardWriter(args.out, args.resolution)
    while time_left() > 10:                 # seconds until BENCH_DEADLINE
        images, labels = make_some(...)     # uint8 N x 3 x R x R (RGB), int64 N
        writer.write(images, labels)        # counts once this returns

Standalone on purpose (standard library, torch and safetensors only): inside the sandbox the
harness exposes this one file as `benchmark.genkit`.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path
from typing import Callable

SHARD_NAME = "shard-{:05d}.safetensors"
SHARD_PATTERN = re.compile(r"shard-(\d{5})\.safetensors")  # use fullmatch: `$` would allow a final newline


def parse_args(argv: list[str] | None = None,
               extra: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    """The harness's command line; `extra` may add the submission's own options (its `args`).
    Adds `class_names` (index order) read from --classes."""
    p = argparse.ArgumentParser(description="generator entrypoint (generative track)")
    p.add_argument("--dataset", required=True)
    p.add_argument("--num-classes", type=int, required=True)
    p.add_argument("--resolution", type=int, required=True)
    p.add_argument("--classes", type=Path, required=True, help="JSON list of class names in index order")
    p.add_argument("--out", type=Path, required=True, help="write shards here")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    if extra is not None:
        extra(p)
    args = p.parse_args(argv)
    args.class_names = json.loads(args.classes.read_text())
    return args


def budget() -> float:
    """The generation budget in seconds (BENCH_BUDGET_SECONDS); infinite when run by hand."""
    return float(os.environ.get("BENCH_BUDGET_SECONDS", "inf"))


def deadline() -> float:
    """Unix time at which the harness stops the generator (BENCH_DEADLINE)."""
    return float(os.environ.get("BENCH_DEADLINE", "inf"))


def time_left() -> float:
    return deadline() - time.time()


class ShardWriter:
    """Writes shard-00000.safetensors, shard-00001… atomically: a shard counts only when complete."""

    def __init__(self, out: Path | str, resolution: int | None = None):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.resolution = resolution
        taken = [int(m.group(1)) for p in self.out.iterdir() if (m := SHARD_PATTERN.fullmatch(p.name))]
        self.index = max(taken, default=-1) + 1
        self.images_written = 0

    def write(self, images, labels) -> Path:
        import torch
        from safetensors.torch import save_file

        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be uint8 N x 3 x H x W (RGB), got {images.dtype} {tuple(images.shape)}")
        if self.resolution is not None and tuple(images.shape[2:]) != (self.resolution, self.resolution):
            raise ValueError(f"images must be {self.resolution} x {self.resolution}, got {tuple(images.shape[2:])}")
        labels = torch.as_tensor(labels).to(torch.int64).flatten()
        if labels.shape[0] != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
        final = self.out / SHARD_NAME.format(self.index)
        tmp = self.out / f".{final.name}.tmp"
        save_file({"images": images.detach().cpu().contiguous(), "labels": labels.cpu().contiguous()}, str(tmp))
        os.replace(tmp, final)
        self.index += 1
        self.images_written += images.shape[0]
        return final
