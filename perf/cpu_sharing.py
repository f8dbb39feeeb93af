"""CPU evaluation when the cores are shared: one process alone, then two at once, with
libgomp's default spinning, with the harness's setting (benchmark/__init__.py), and with no
spinning at all.

    python perf/cpu_sharing.py

Each process trains the challenge ConvNet on digits (IPC 10, 101 passes) and runs the leakage
check of 100 images; the script prints each one's seconds. Two processes on N cores should take
about twice as long as one alone when each uses all N cores, not ten times.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORK = r"""
import time, torch
import evaluator  # torch, and with it OpenMP, is loaded here: before `benchmark` sets anything
from benchmark.protocol import load_protocol
from evaluator.data import load_dataset
from evaluator.leakage import check_leakage
from evaluator.train import Task, TrainConfig, train_and_test
p, ds = load_protocol(), load_dataset("digits", None, need_train=True)
g = torch.Generator().manual_seed(0)
idx = torch.cat([torch.nonzero(ds.train_labels == c).flatten()[torch.randperm(40, generator=g)[:10]] for c in range(10)])
t = time.perf_counter()
check_leakage(ds.train_images[idx], ds.train_labels[idx], ds.test_images, ds.test_labels, ds.train_images, p.leakage)
leak = time.perf_counter() - t
task = Task(ds.normalize(ds.train_images[idx]), ds.train_labels[idx], ds.normalized_test, ds.test_labels, 10)
t = time.perf_counter()
train_and_test(task, TrainConfig(recipe=p.recipe, epochs=100, precision="fp32", compile=False), 0)
print(f"{leak:6.2f} {time.perf_counter() - t:6.2f}")
"""


def run(env: dict, at_once: int) -> list[str]:
    procs = [subprocess.Popen([sys.executable, "-c", WORK], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(at_once)]
    return [p.communicate()[0].strip() for p in procs]


def main() -> None:
    base = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    base["PYTHONPATH"] = str(ROOT)
    settings = {"libgomp default": base, "harness (GOMP_SPINCOUNT=10000)": {**base, "GOMP_SPINCOUNT": "10000"},
                "OMP_WAIT_POLICY=PASSIVE": {**base, "OMP_WAIT_POLICY": "PASSIVE"}}
    print(f"{os.cpu_count()} CPUs; seconds per process: leakage check (100 images), training (101 passes)")
    for name, env in settings.items():
        for at_once in (1, 2):
            print(f"{name:32s} {at_once} at once: " + " | ".join(run(env, at_once)))


if __name__ == "__main__":
    main()
