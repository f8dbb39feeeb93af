"""Training throughput of every architecture of the cross-architecture set, at CIFAR-100's shape
(100 classes, 32 px, IPC 10 = 1000 images), through the same loop that scores submissions.

    python perf/arch_throughput.py                     # CPU, eager
    python perf/arch_throughput.py --device cuda --compile

Prints images/s, parameters and the seconds one 1001-pass run would take.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from train_throughput import FULL_PASSES, IPC, SHAPES, ours  # noqa: E402

from benchmark.protocol import load_protocol  # noqa: E402
from evaluator import archs  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--compile", action="store_true", help="torch.compile each network")
    p.add_argument("--archs", nargs="+", default=None, help="default: convnet and the protocol's cross set")
    p.add_argument("--shape", default="cifar100", choices=list(SHAPES))
    p.add_argument("--passes", type=int, default=None, help="timed passes (default: 2 CPU, 20 CUDA)")
    args = p.parse_args()
    protocol = load_protocol()
    names = args.archs or [protocol.challenge_arch, *protocol.cross_archs]
    cuda = args.device.startswith("cuda")
    passes = args.passes or (20 if cuda else 2)
    n_classes, res = SHAPES[args.shape]
    device = torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {device}; {args.shape} shape ({IPC * n_classes} images, {res} px); precision {args.precision}; "
          f"{'compiled' if args.compile else 'eager'}; {passes} timed passes")
    print(f"{'arch':<10} {'parameters':>11} {'images/s':>10} {'s/1001 passes':>14}")
    for name in names:
        params = archs.parameter_count(archs.build(name, n_classes, res))
        ips = ours(n_classes, res, args.device, args.precision, args.compile, None, passes, warmup=1 if not cuda else 3,
                   arch=name)
        print(f"{name:<10} {params:>11,} {ips:>10.0f} {IPC * n_classes * FULL_PASSES / ips:>14.0f}", flush=True)


if __name__ == "__main__":
    main()
