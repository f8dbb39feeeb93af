"""The generation clock: a device score, budgets scaled by it, and what shows contention.

A generator's IPC depends on how fast the device it runs on is, and how busy. The harness
therefore measures the device just before and just after every generation with a short, fixed
workload (`measure`) that stands for what generators do: matrix products and 3x3 convolutions at
the dataset's resolution, and memory traffic. Its score is how many rounds of that workload the
device completes per second: the upper quartile of several timed samples, which a brief hiccup
does not move but sustained contention lowers. The protocol names, per
dataset, the device a budget is meant for and that device's score; the budget a generator gets
is the protocol's budget x target score / measured score, within the protocol's limits
(`effective_budget`). A generation during which the score moved, or the share of the CPUs other
processes used changed (`CpuMeter`), was measured on an unstable clock.

The workload is versioned (WORKLOAD_VERSION): a change to it is a new version, and a protocol's
target scores name the version they were measured with.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

WORKLOAD_VERSION = 1
WARM_UP_SECONDS = 0.3


@dataclass(frozen=True)
class Shape:
    """One round of a workload: `matmuls` products of two `matrix` x `matrix` matrices, two 3x3
    convolutions of `channels` channels over `pixels` pixels (a batch of images at the dataset's
    resolution), and a copy of `copy_mib` MiB there and back."""
    dtype: str
    matrix: int
    matmuls: int
    channels: int
    pixels: int
    copy_mib: int
    rounds: int  # rounds per timed sample


SHAPES = {  # version 1
    "cpu": Shape(dtype="float32", matrix=384, matmuls=4, channels=32, pixels=16384, copy_mib=32, rounds=6),
    "gpu": Shape(dtype="float16", matrix=4096, matmuls=8, channels=128, pixels=262144, copy_mib=1024, rounds=10),
}


def default_workload(device: str) -> str:
    return "gpu" if device.startswith("cuda") else "cpu"


@dataclass(frozen=True)
class Score:
    """A measured device score: rounds of the workload per second."""
    value: float  # the upper quartile of the samples' rates
    spread: float  # their interquartile range over the value
    workload: str
    resolution: int
    samples: tuple[float, ...]

    def text(self) -> str:
        return f"{self.value:.2f} (±{self.spread:.1%} over {len(self.samples)} samples, {self.workload} workload v{WORKLOAD_VERSION}, {self.resolution} px)"


def _round(workload: str, resolution: int, device: str):
    """The tensors of one round, made once, and the function that runs the round."""
    import torch
    import torch.nn.functional as F

    shape = SHAPES[workload]
    dtype = getattr(torch, shape.dtype)
    gen = torch.Generator(device="cpu").manual_seed(0)

    def rand(*size):
        return torch.randn(*size, generator=gen).to(device=device, dtype=dtype)

    a, b = rand(shape.matrix, shape.matrix), rand(shape.matrix, shape.matrix)
    out = torch.empty_like(a)
    batch = max(1, shape.pixels // (resolution * resolution))
    x, w = rand(batch, shape.channels, resolution, resolution), rand(shape.channels, shape.channels, 3, 3) * 0.05
    src = torch.zeros((shape.copy_mib << 20) // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)

    def run() -> None:
        for _ in range(shape.matmuls):
            torch.mm(a, b, out=out)
        F.conv2d(F.conv2d(x, w, padding=1), w, padding=1)
        dst.copy_(src)
        src.copy_(dst)

    return run


def measure(device: str, resolution: int, workload: str | None = None, samples: int = 15) -> Score:
    """The device's score: `samples` timed samples of `Shape.rounds` rounds each, after a warm-up."""
    import torch

    workload = workload or default_workload(device)
    if workload not in SHAPES:
        raise ValueError(f"unknown workload '{workload}'; known: {', '.join(SHAPES)}")
    run = _round(workload, resolution, device)

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)

    with torch.no_grad():
        warm = time.perf_counter() + WARM_UP_SECONDS  # thread pools, caches, clock frequency settle
        while time.perf_counter() < warm:
            run()
            sync()
        rates = []
        for _ in range(samples):
            start = time.perf_counter()
            for _ in range(SHAPES[workload].rounds):
                run()
            sync()
            rates.append(SHAPES[workload].rounds / (time.perf_counter() - start))
    q = statistics.quantiles(rates, n=4, method="inclusive")
    return Score(value=q[2], spread=(q[2] - q[0]) / q[2], workload=workload, resolution=resolution,
                 samples=tuple(rates))


# glibc's allocator picks, per process and by the history of its frees, whether a convolution's
# output comes from its heap or from freshly mapped pages: the same CPU convolution then takes 2 or
# 3.5 ms, so the score of a fresh process came out in one of two modes (110 or 150 on the CI
# machine). Fixed thresholds make every measurement take the heap's mode.
ALLOCATOR = {"MALLOC_MMAP_THRESHOLD_": str(64 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


PASSED = ("PATH", "HOME", "PYTHONPATH", "CUDA_VISIBLE_DEVICES", "GOMP_SPINCOUNT", "OMP_WAIT_POLICY")


def calibration_env() -> dict[str, str]:
    """What the generator's environment holds that bears on speed (no OMP_NUM_THREADS or the like:
    torchrun sets it to 1 for its ranks, and the generator, whose environment is built from
    scratch, never sees it), plus ALLOCATOR."""
    return {**{k: os.environ[k] for k in PASSED if k in os.environ}, "LANG": "C.UTF-8", **ALLOCATOR}


def measure_fresh(device: str, resolution: int, workload: str | None = None, samples: int = 15) -> Score:
    """`measure`, in a fresh interpreter with the generator's environment and ALLOCATOR's settings:
    the score must not depend on what the measuring process ran before (after a training run in
    the same process, the CPU workload's convolutions took half the time)."""
    cmd = [sys.executable, "-m", "benchmark.clock", device, str(resolution), workload or default_workload(device),
           str(samples)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False, env=calibration_env())
        data = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        data, done = None, None
    if not isinstance(data, dict):
        tail = " | ".join((done.stderr if done else "").strip().splitlines()[-3:])
        raise RuntimeError(f"the calibration workload failed on {device} ({tail or 'no output'}); "
                           f"try: bench calibrate --device {device}")
    return Score(**{**data, "samples": tuple(data["samples"])})


# -- the budget ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Budget:
    """The seconds a generator gets, and how they were decided."""
    seconds: float
    scale: float  # seconds / the protocol's budget (1: unscaled)
    clock: str  # "scaled", "clamped" (scale beyond the protocol's limits), "unscaled" (no target), "mismatch"
    # (the target is a device of another kind: a CPU target, a GPU generator), "wall" (--budget)


def effective_budget(budget: float, target: float | None, measured: float, limits: tuple[float, float]) -> Budget:
    """budget x target / measured, the factor kept within `limits`; unscaled without a target."""
    if target is None:
        return Budget(budget, 1.0, "unscaled")
    scale = target / measured
    kept = min(max(scale, limits[0]), limits[1])
    return Budget(budget * kept, kept, "scaled" if kept == scale else "clamped")


def moved(before: float, after: float) -> float:
    """How far the score moved during a generation: |after - before| / before."""
    return abs(after - before) / before


# -- other processes on the CPUs ------------------------------------------------------------------------

def _cpus() -> set[int]:
    try:
        return os.sched_getaffinity(0)
    except (AttributeError, OSError):
        return set(range(os.cpu_count() or 1))


def cpu_jiffies(stat: Path = Path("/proc/stat")) -> tuple[int, int] | None:
    """(busy, total) clock ticks of the CPUs this process may run on, since boot; None where
    /proc/stat cannot be read. Steal time (the hypervisor giving the CPU to another machine)
    counts as busy."""
    try:
        lines = stat.read_text().splitlines()
    except OSError:
        return None
    mine, busy, total = _cpus(), 0, 0
    for line in lines:
        name, *values = line.split()
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in mine:
            continue
        ticks = [int(v) for v in values[:8]] + [0] * (8 - len(values[:8]))
        user, nice, system, idle, iowait, irq, softirq, steal = ticks
        busy += user + nice + system + irq + softirq + steal
        total += user + nice + system + idle + iowait + irq + softirq + steal
    return (busy, total) if total else None


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """The share of the CPUs' time that other processes used between `start` and `share`: all busy
    time, minus this process's own and the generator's (from its cgroup)."""

    def __init__(self) -> None:
        self.first = cpu_jiffies()
        self.own = _own_cpu_seconds()

    def share(self, generator_seconds: float) -> float | None:
        last = cpu_jiffies()
        if self.first is None or last is None or last[1] <= self.first[1]:
            return None
        tick = os.sysconf("SC_CLK_TCK")
        busy = (last[0] - self.first[0]) / tick
        total = (last[1] - self.first[1]) / tick
        foreign = busy - (_own_cpu_seconds() - self.own) - generator_seconds
        return min(1.0, max(0.0, foreign / total))


def foreign_share(window: float = 0.5) -> float | None:
    """The share of the CPUs other processes use now, over `window` seconds."""
    meter = CpuMeter()
    time.sleep(window)
    return meter.share(0.0)


def gpu_processes(device: str) -> list[str]:
    """Other processes computing on the GPU (pid and name), from nvidia-smi; [] where it is missing
    (or, in a container, cannot see them)."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return []
    try:
        out = subprocess.run([tool, "--query-compute-apps=pid,process_name", "--format=csv,noheader",
                              "-i", gpu_selector(device)], check=False, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    rows = [line.split(",", 1) for line in out.splitlines() if line.strip()]
    return [f"pid {pid.strip()} ({name.strip()})" for pid, *rest in rows for name in rest or [""]
            if pid.strip().isdigit() and int(pid) != os.getpid()]


def gpu_selector(device: str) -> str:
    """The GPU as nvidia-smi names it: its UUID, or its index among the visible ones."""
    import torch

    uuid = getattr(torch.cuda.get_device_properties(torch.device(device)), "uuid", None)
    if uuid is not None:
        return f"GPU-{uuid}"
    index = torch.device(device).index or 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return visible.split(",")[index] if visible else str(index)


def busy(device: str, threshold: float) -> str | None:
    """Why the device is busy with other processes now (None: it is free)."""
    if device.startswith("cuda"):
        others = gpu_processes(device)
        return f"{device} is in use by {', '.join(others[:3])}" if others else None
    share = foreign_share()
    if share is not None and share > threshold:
        return f"other processes use {share:.0%} of the CPUs (load average {os.getloadavg()[0]:.1f})"
    return None


# -- a generation's clock ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reading:
    """What the calibrated clock measured around one generation."""
    before: Score  # just before the clock started: it decided the budget
    after: Score  # just after the generator was stopped
    budget: Budget
    foreign_share: float | None  # share of the CPUs other processes used during it (CPU generators)
    foreign_before: float | None  # ... and during the measurement before it
    attempts: int  # 2: the first generation was disturbed and run again
    unstable: str  # why the clock was unstable in the generation kept ("": stable)

    @property
    def state(self) -> str:
        return "unstable" if self.unstable else self.budget.clock


def contention(before: Score, after: Score, foreign: float | None, foreign_before: float | None,
               tolerance: float, max_foreign: float) -> str:
    """Why a generation's clock was unstable: the score moved, or the share of the CPUs other
    processes used changed between the measurement before and the generation (a steady load is
    in the score, and so in the budget; a load that came or went during the generation is not)."""
    reasons, change = [], moved(before.value, after.value)
    if change > tolerance:
        reasons.append(f"the device score moved by {change:.0%} "
                       f"({before.value:.1f} before, {after.value:.1f} after)")
    if foreign is not None and foreign_before is not None and abs(foreign - foreign_before) > max_foreign:
        reasons.append(f"other processes used {foreign:.0%} of the CPUs during the generation and "
                       f"{foreign_before:.0%} while the device was measured")
    return "; ".join(reasons)


if __name__ == "__main__":  # measure_fresh's interpreter: device resolution workload samples -> one JSON line
    _device, _resolution, _workload, _samples = sys.argv[1:5]
    print(json.dumps(asdict(measure(_device, int(_resolution), _workload, int(_samples)))), flush=True)
