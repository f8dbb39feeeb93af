"""Cost of the leakage check next to one training run, at CIFAR-100 and Tiny-ImageNet shapes.

    python perf/leakage_cost.py                 # CPU
    python perf/leakage_cost.py --device cuda

For each shape: the seconds of the leakage check of an IPC-10 set against a test and a training
set of the dataset's size (random images: the cost does not depend on the content), and the
seconds of one 1001-pass training run of the evaluation ConvNet on the same set, extrapolated from
a few timed passes. Both are timed in this one process, one after the other, so their ratio holds
on a busy machine too. The protocol asks for a ratio of at most 0.1.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.protocol import load_protocol  # noqa: E402
from evaluator.leakage import check_leakage  # noqa: E402
from evaluator.train import Task, TrainConfig, train_and_test  # noqa: E402

SHAPES = {"cifar100": (100, 32, 10_000, 50_000), "tinyimagenet": (200, 64, 10_000, 100_000)}
IPC, FULL_PASSES = 10, 1001


def images(n: int, res: int, g: torch.Generator) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, res, res), dtype=torch.uint8, generator=g)


def training_run_seconds(n_classes: int, res: int, device: str, passes: int) -> float:
    n = IPC * n_classes
    x, y = torch.randn(n, 3, res, res), torch.arange(n_classes).repeat_interleave(IPC)
    task = Task(x, y, x[:8], y[:8], n_classes)
    base = dict(recipe=load_protocol().recipe, device=device, precision="fp32", compile=False)
    train_and_test(task, TrainConfig(epochs=0, **base), seed=0)  # warm-up
    start = time.perf_counter()
    train_and_test(task, TrainConfig(epochs=passes - 1, **base), seed=1)
    return (time.perf_counter() - start) / passes * FULL_PASSES


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    p.add_argument("--passes", type=int, default=2, help="timed training passes to extrapolate from")
    args = p.parse_args()
    params = load_protocol().leakage
    g = torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__}, {args.device}, {torch.get_num_threads()} threads; leakage parameters {params}")
    print(f"{'shape':<13} {'images':>7} {'test':>7} {'train':>7} {'check s':>8} {'run s':>8} {'ratio':>6}")
    for shape in args.shapes:
        n_classes, res, n_test, n_train = SHAPES[shape]
        sub, test, train = images(IPC * n_classes, res, g), images(n_test, res, g), images(n_train, res, g)
        labels = torch.arange(n_classes).repeat_interleave(IPC)
        test_labels = torch.randint(0, n_classes, (n_test,), generator=g)
        report = check_leakage(sub.to(args.device), labels, test, test_labels, train, params)
        run = training_run_seconds(n_classes, res, args.device, args.passes)
        print(f"{shape:<13} {len(sub):>7} {n_test:>7} {n_train:>7} {report.seconds:>8.1f} {run:>8.1f} "
              f"{report.seconds / run:>6.3f}", flush=True)


if __name__ == "__main__":
    main()
