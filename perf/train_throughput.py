"""Training throughput of the evaluation loop at IPC 10, CIFAR-100 and Tiny-ImageNet shapes.

    python perf/train_throughput.py                       # CPU: eager, compiled, official-style
    python perf/train_throughput.py --device cuda --precision bf16 --compile-mode reduce-overhead

For each variant it times a few full passes after warm-up (compilation included in warm-up),
and prints images/s, the extrapolated seconds of one 1001-pass run, the achieved FLOP/s (training
= 3x the forward FLOPs) and its share of the device's peak, measured here as the best of a large
dense matrix multiply and a large 3x3 convolution in the same precision. `official` is the
official scorer's loop shape (perf/_official_style.py), the baseline to beat.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _official_style import make_pass as official_pass  # noqa: E402
from benchmark.protocol import load_protocol  # noqa: E402
from evaluator.convnet import conv_flops_per_image  # noqa: E402
from evaluator.train import Task, TrainConfig, train_and_test  # noqa: E402

SHAPES = {"cifar100": (100, 32), "tinyimagenet": (200, 64)}
IPC = 10
FULL_PASSES = 1001


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def rate(fn, work: float, device: str, reps: int, warmup: int = 2) -> float:
    """work x reps / seconds of `reps` calls of fn, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    sync(device)
    return work * reps / (time.perf_counter() - start)


@torch.no_grad()
def measured_peak(device: str, precision: str) -> float:
    """The practical peak of this device in this precision: the best of a large dense matrix
    multiply and a large 3x3 convolution (on some CPUs the convolution library is the faster)."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    cuda = device.startswith("cuda")
    n, reps = (8192, 20) if cuda else (2048, 5)
    a = torch.randn(n, n, device=device, dtype=dtype)
    gemm = rate(lambda: a @ a, 2 * n**3, device, reps)
    batch, ch, size = (256, 256, 64) if cuda else (16, 256, 32)
    x = torch.randn(batch, ch, size, size, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    conv = torch.nn.Conv2d(ch, ch, 3, padding=1).to(device, dtype).to(memory_format=torch.channels_last)
    conv_rate = rate(lambda: conv(x), 2 * batch * size * size * ch * ch * 9, device, reps)
    return max(gemm, conv_rate)


def ours(n_classes: int, res: int, device: str, precision: str, compile_: bool, mode: str | None,
         passes: int, warmup: int, arch: str = "convnet") -> float:
    """Images/s of evaluator.train over `passes` passes (after `warmup` passes)."""
    n = IPC * n_classes
    x = torch.randn(n, 3, res, res)
    y = torch.arange(n_classes).repeat_interleave(IPC)
    task = Task(x, y, x[:8], y[:8], n_classes)
    base = dict(recipe=load_protocol().recipe, device=device, precision=precision, compile=compile_, compile_mode=mode,
                arch=arch)
    train_and_test(task, TrainConfig(epochs=warmup - 1, **base), seed=0)  # compile + warm
    start = time.perf_counter()
    train_and_test(task, TrainConfig(epochs=passes - 1, **base), seed=1)
    return n * passes / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--compile-mode", default=None, help="torch.compile mode, e.g. reduce-overhead (CUDA graphs)")
    p.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    p.add_argument("--passes", type=int, default=None, help="timed passes (default: 3 CPU, 50 CUDA)")
    p.add_argument("--variants", nargs="+", default=["eager", "compiled", "official"],
                   choices=["eager", "compiled", "official"])
    args = p.parse_args()
    cuda = args.device.startswith("cuda")
    passes = args.passes or (50 if cuda else 3)
    warmup = 5 if cuda else 2
    peak = measured_peak(args.device, args.precision)
    name = torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}; precision {args.precision}; "
          f"measured peak (best of GEMM, 3x3 conv) {peak / 1e12:.2f} TFLOP/s")
    print(f"{'shape':<13} {'variant':<10} {'images/s':>10} {'s/1001 passes':>14} {'TFLOP/s':>8} {'% peak':>7}")
    for shape in args.shapes:
        n_classes, res = SHAPES[shape]
        flops_per_image = 3 * conv_flops_per_image(res, n_classes)
        shape_passes = max(1, passes // 4) if (shape == "tinyimagenet" and not cuda) else passes
        for variant in args.variants:
            if variant == "official":
                one_pass, n_images = official_pass(n_classes, res, IPC, args.device)
                ips = rate(one_pass, n_images, args.device, shape_passes, warmup=1)
            else:
                ips = ours(n_classes, res, args.device, args.precision, variant == "compiled",
                           args.compile_mode, shape_passes, warmup)
            run_s = IPC * n_classes * FULL_PASSES / ips
            achieved = ips * flops_per_image
            print(f"{shape:<13} {variant:<10} {ips:>10.0f} {run_s:>14.1f} {achieved / 1e12:>8.3f} "
                  f"{100 * achieved / peak:>6.1f}%", flush=True)


if __name__ == "__main__":
    main()
