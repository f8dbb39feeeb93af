"""The harness's teachers: what gives soft labels online in the soft-label division.

A teacher is the protocol's network (`soft_labels.teacher.arch`) trained on the whole training
split with the protocol's recipe for `soft_labels.teacher.epochs` epochs, seed
`soft_labels.teacher.seed`: a pinned recipe, so every submission of a protocol version is
taught by the same teacher, never one of its own. It is trained once per machine and cached
under datasets/cache/teachers/, keyed by the protocol, the data and the network; its file
records its test accuracy and cost, and rows record the sha256 of its weights.

    teacher = obtain(opts, "photodigits")    # trained on first use (minutes at 8 px on a CPU)
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from filelock import FileLock
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from evaluator import archs
from evaluator.atomic import atomic_write
from evaluator.data import Dataset, data_digest, tensor_digest
from evaluator.softlabels import forward_flops, teacher_targets
from evaluator.train import Task, TrainConfig, train_and_test

from .console import info, pass_progress
from .errors import UsageError
from .options import Options


@dataclass(frozen=True)
class Teacher:
    dataset: str
    arch: str
    model: nn.Module  # eval mode, on the CPU
    digest: str  # sha256 of its weights
    accuracy: float  # on the test split (%)
    parameters: int
    train_seconds: float  # what training it took, where it was trained
    device: str  # where it was trained
    path: Path
    flops_per_image: int  # of one forward pass on one image of its dataset

    def on(self, device: str) -> nn.Module:
        return self.model.to(device).eval()


def _config(opts: Options, dataset: str, arch: str) -> TrainConfig:
    """The protocol's recipe and epochs, whatever the command line overrides for evaluations."""
    p = opts.protocol
    return TrainConfig(recipe=p.recipe, epochs=p.soft_labels.teacher_epochs[dataset], precision=p.precision,
                       arch=arch, device=opts.device, compile=opts.compile)


def _key(opts: Options, ds: Dataset, arch: str) -> str:
    """What makes a teacher, and nothing else: the recipe, precision, epochs and seed it trains
    with, the network, the data and their normalisation (a protocol version that changes none of
    these keeps its teachers)."""
    p, cfg = opts.protocol, _config(opts, ds.info.name, arch)
    made_of = {"recipe": asdict(cfg.recipe), "precision": cfg.precision, "epochs": cfg.epochs, "arch": arch,
               "seed": p.soft_labels.teacher_seed, "dataset": ds.info.name, "data": data_digest(ds),
               "normalization": [ds.info.mean, ds.info.std]}
    return hashlib.sha256(json.dumps(made_of, sort_keys=True).encode()).hexdigest()


def teacher_path(opts: Options, ds: Dataset, arch: str) -> Path:
    safe_arch = arch.replace(":", "-").replace("/", "-")
    return opts.data_dir / "cache" / "teachers" / f"{ds.info.name}-{safe_arch}-{_key(opts, ds, arch)[:16]}.safetensors"


def _params(opts: Options, dataset: str, arch: str | None) -> str:
    soft, label = opts.protocol.soft_labels, opts.protocol.label
    if soft is None:
        raise UsageError(f"protocol {label} has no soft-label division (it came with version 7)")
    if dataset not in soft.teacher_epochs:
        raise UsageError(f"protocol {label} names no teacher for {dataset} (soft_labels.teacher.epochs); "
                         f"add its epochs in a new protocol version")
    return arch or soft.teacher_arch


def obtain(opts: Options, dataset: str, arch: str | None = None, retrain: bool = False) -> Teacher:
    """The dataset's teacher: read from the cache, or trained now (under a lock: a second process
    waits for the first one's teacher)."""
    arch = _params(opts, dataset, arch)
    ds = opts.dataset(dataset, need_train=True)
    path = teacher_path(opts, ds, arch)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if path.is_file() and not retrain:
            return load(path, ds, arch)
        return _train(opts, ds, arch, path)


def _train(opts: Options, ds: Dataset, arch: str, path: Path) -> Teacher:
    soft = opts.protocol.soft_labels
    cfg = _config(opts, ds.info.name, arch)
    name = f"teacher {ds.info.name}/{arch}"
    info(f"{name}: training {cfg.epochs} epochs on the {len(ds.train_labels)} training images "
         f"(protocol {opts.protocol.label}; once, then cached)")
    task = Task(ds.normalize(ds.train_images), ds.train_labels, ds.normalized_test, ds.test_labels, ds.info.num_classes)
    kept: dict[str, torch.Tensor] = {}
    start = time.perf_counter()
    with pass_progress(name, cfg.passes) as on_pass:
        run = train_and_test(task, cfg, soft.teacher_seed, on_pass,
                             keep=lambda m: kept.update({k: v.detach().cpu().clone().contiguous()
                                                         for k, v in m.state_dict().items()}))
    seconds = time.perf_counter() - start
    meta = {"dataset": ds.info.name, "arch": arch, "accuracy": f"{run.accuracy:.4f}", "epochs": str(cfg.epochs),
            "seed": str(soft.teacher_seed), "protocol": opts.protocol.label, "train_seconds": f"{seconds:.1f}",
            "device": opts.device, "torch": torch.__version__, "parameters": str(run.parameters)}
    atomic_write(path, lambda tmp: save_file(kept, str(tmp), metadata=meta))
    teacher = load(path, ds, arch)
    info(f"{name}: {run.accuracy:.2f} % on the test split, {run.parameters:,} parameters, trained in "
         f"{seconds:.0f} s; weights {teacher.digest[:16]} in {path}")
    return teacher


def load(path: Path, ds: Dataset, arch: str) -> Teacher:
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        state = {k: f.get_tensor(k) for k in sorted(f.keys())}
    model = archs.build(arch, ds.info.num_classes, ds.info.resolution)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise UsageError(f"{path}: not a {arch} teacher for {ds.info.name} ({' '.join(str(exc).split())[:100]}); "
                         f"delete it and run bench teacher train {ds.info.name} again") from None
    return Teacher(dataset=ds.info.name, arch=arch, model=model.eval(), digest=tensor_digest(*state.values()),
                   accuracy=float(meta.get("accuracy", "nan")), parameters=archs.parameter_count(model),
                   train_seconds=float(meta.get("train_seconds", "nan")), device=meta.get("device", ""), path=path,
                   flops_per_image=forward_flops(model, ds.info.resolution))


@torch.no_grad()
def soft_labels(teacher: Teacher, images: torch.Tensor, temperature: float, device: str = "cpu",
                batch: int = 1024) -> torch.Tensor:
    """The teacher's class distributions (at the temperature) for normalised images, not augmented."""
    model = teacher.on(device)
    out = [teacher_targets(model, images[i : i + batch].to(device), temperature).cpu()
           for i in range(0, len(images), batch)]
    return torch.cat(out)
