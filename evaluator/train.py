"""The evaluation protocol: train ConvNetD3-W128 on a (distilled) image set, test the final model.

    from benchmark.protocol import load_protocol
    from evaluator.train import TrainConfig, train_and_test
    p = load_protocol()
    cfg = TrainConfig(recipe=p.recipe, epochs=p.fixed_epochs, precision=p.precision, device="cuda")
    result = train_and_test(images, labels, test_images, test_labels, num_classes=100, cfg=cfg, seed=0)

Faithful to the official scorer (docs/PROTOCOL.md), with every number from the recipe: SGD
(lr, momentum, weight decay), batches reshuffled every pass with the last partial batch kept,
E+1 passes (0..E), after pass E//2+1 the learning rate drops by the decay factor and the optimizer
is created anew (momentum restarts from zero), one DSA operation per batch with per-image
parameters, accuracy of the final model on the whole test set. With soft targets (the soft-label
division, `evaluator.softlabels`) the loss is the distillation objective towards stored
distributions or a teacher's on the very batch; everything else is the same loop.

Fast: data lives on the device, augmentation is vectorised, random numbers come from device
generators, and nothing inside the pass loop reads a device value back to the host.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import dsa
from . import archs
from .recipe import PRECISIONS, Recipe
from .softlabels import SoftTargets, distillation_loss, teacher_targets

# Below this many image-steps a CPU run is faster eager than compile time + compiled steps.
COMPILE_MIN_IMAGE_STEPS = 200_000


@dataclass(frozen=True)
class TrainConfig:
    """One run's settings: the protocol's recipe, epochs and precision (no defaults: they decide
    the score), and how to run it, which must not change the result beyond float noise."""
    recipe: Recipe
    epochs: int
    precision: str
    arch: str = archs.CHALLENGE  # the network: part of what a result is, like the dataset
    device: str = "cpu"
    compile: bool | None = None  # None: compile where it pays (CUDA, or long CPU runs)
    compile_mode: str | None = None  # torch.compile mode; "reduce-overhead" uses CUDA graphs
    channels_last: bool | None = None  # None: on when compiling or on CUDA

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {self.epochs}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r} is not one of {PRECISIONS}")

    @property
    def passes(self) -> int:
        """The official loop runs passes 0..E inclusive."""
        return self.epochs + 1

    @property
    def decay_pass(self) -> int:
        """The learning rate drops (and momentum restarts) after this pass."""
        return self.epochs // 2 + 1


def learning_rate(pass_index: int, cfg: TrainConfig) -> float:
    lr = cfg.recipe.lr
    return lr if pass_index <= cfg.decay_pass else lr * cfg.recipe.decay_factor


def make_optimizer(model: nn.Module, lr: float, cfg: TrainConfig) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=cfg.recipe.momentum,
                           weight_decay=cfg.recipe.weight_decay)


@dataclass(frozen=True)
class Task:
    """What one evaluation trains on and is tested on."""
    images: Tensor  # normalised float N x 3 x H x W
    labels: Tensor  # int64 N
    test_images: Tensor  # normalised float
    test_labels: Tensor
    num_classes: int
    soft: SoftTargets | None = None  # the soft-label division: train towards these, not the labels

    @property
    def resolution(self) -> int:
        return self.images.shape[-1]


@dataclass(frozen=True)
class RunResult:
    seed: int
    accuracy: float  # percent, on the whole test set
    per_class: tuple[float, ...]  # percent per class, index order
    seconds: float  # wall time of training + testing
    passes: int
    parameters: int  # of the network trained


def should_compile(cfg: TrainConfig, num_images: int) -> bool:
    if cfg.compile is not None:
        return cfg.compile
    if cfg.device.startswith("cuda"):
        return True
    return num_images * cfg.passes >= COMPILE_MIN_IMAGE_STEPS


class _Network:
    """One model object per shape and device, re-initialised per run.

    Reusing the same module keeps torch.compile's graphs valid across runs and submissions:
    a fresh module per run would recompile every time and soon hit dynamo's cache limit.
    """

    _cache: dict[tuple, "_Network"] = {}

    def __init__(self, num_classes: int, resolution: int, cfg: TrainConfig, compiled: bool):
        self.arch = cfg.arch
        self.module = archs.seeded(cfg.arch, num_classes, resolution, seed=0).to(cfg.device)
        self.memory_format = torch.channels_last if self._channels_last(cfg, compiled) else torch.contiguous_format
        self.module = self.module.to(memory_format=self.memory_format)
        self.forward = torch.compile(self.module, mode=cfg.compile_mode, dynamic=False) if compiled else self.module

    @staticmethod
    def _channels_last(cfg: TrainConfig, compiled: bool) -> bool:
        if cfg.channels_last is not None:
            return cfg.channels_last
        return compiled or cfg.device.startswith("cuda")

    @classmethod
    def get(cls, num_classes: int, resolution: int, cfg: TrainConfig, compiled: bool) -> "_Network":
        key = (cfg.arch, num_classes, resolution, cfg.device, compiled, cfg.compile_mode, cfg.channels_last)
        if key not in cls._cache:
            cls._cache[key] = cls(num_classes, resolution, cfg, compiled)
        return cls._cache[key]

    def reset(self, num_classes: int, resolution: int, seed: int) -> nn.Module:
        """The seed's initial weights (and buffers, e.g. running statistics), in place."""
        fresh = archs.seeded(self.arch, num_classes, resolution, seed).state_dict()
        with torch.no_grad():
            for name, value in self.module.state_dict().items():
                value.copy_(fresh[name])
        self.module.train()
        return self.module

    @property
    def parameters(self) -> int:
        return archs.parameter_count(self.module)


def _generators(device: str, seed: int) -> tuple[torch.Generator, torch.Generator]:
    """A host generator (batch operation choice) and a device one (order, augmentation)."""
    host = torch.Generator().manual_seed(seed)
    data = torch.Generator(device=device).manual_seed(seed + 1)  # a stream distinct from the host's
    return host, data


def train_and_test(task: Task, cfg: TrainConfig, seed: int,
                   on_pass: Callable[[int, int], None] | None = None,
                   keep: Callable[[nn.Module], None] | None = None) -> RunResult:
    """One seeded run: train on task.images from the seed's initialisation, test the final model.
    keep: given the trained model before it is reused (e.g. to save a teacher's weights)."""
    start = time.perf_counter()
    num_classes, resolution = task.num_classes, task.resolution
    compiled = should_compile(cfg, task.images.shape[0])
    net = _Network.get(num_classes, resolution, cfg, compiled)
    model = net.reset(num_classes, resolution, seed)
    x = task.images.to(cfg.device, torch.float32).contiguous(memory_format=net.memory_format)
    y = task.labels.to(cfg.device, torch.int64)
    host_gen, dev_gen = _generators(cfg.device, seed)
    soft = task.soft
    stored = soft.targets.to(cfg.device, torch.float32) if soft is not None and soft.targets is not None else None
    autocast = torch.autocast(device_type=torch.device(cfg.device).type, dtype=torch.bfloat16,
                              enabled=cfg.precision == "bf16")
    optimizer = make_optimizer(model, learning_rate(0, cfg), cfg)
    n, batch, aug = x.shape[0], cfg.recipe.batch_size, cfg.recipe.augmentation
    for p in range(cfg.passes):
        order = torch.randperm(n, generator=dev_gen, device=cfg.device)
        for lo in range(0, n, batch):
            idx = order[lo : lo + batch]
            xb, yb = x[idx], y[idx]
            if aug is not None:
                xb = dsa.augment(xb, dsa.choose_op(aug, host_gen), aug, dev_gen)
            with autocast:
                logits = net.forward(xb)
                if soft is None:
                    loss = F.cross_entropy(logits, yb)
                else:  # the target of the very batch trained on: stored per image, or the teacher's on it
                    target = stored[idx] if stored is not None else teacher_targets(soft.teacher, xb, soft.temperature)
                    loss = distillation_loss(logits, target, soft.temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if p == cfg.decay_pass:
            # A new optimizer, as the official loop does: the momentum buffer restarts at zero.
            optimizer = make_optimizer(model, learning_rate(p + 1, cfg), cfg)
        if on_pass is not None:
            on_pass(p + 1, cfg.passes)
    accuracy, per_class = test(model, task, cfg, net.memory_format)
    if keep is not None:
        keep(model)
    return RunResult(seed=seed, accuracy=accuracy, per_class=per_class,
                     seconds=time.perf_counter() - start, passes=cfg.passes, parameters=net.parameters)


TEST_BATCH = 1024  # only memory depends on it


@torch.no_grad()
def test(model: nn.Module, task: Task, cfg: TrainConfig,
         memory_format: torch.memory_format = torch.contiguous_format) -> tuple[float, tuple[float, ...]]:
    """Accuracy (percent) of the model in eval mode on the whole test set, and per class."""
    model.eval()
    y = task.test_labels.to(cfg.device, torch.int64)
    correct = torch.zeros(y.shape[0], device=cfg.device)
    autocast = torch.autocast(device_type=torch.device(cfg.device).type, dtype=torch.bfloat16,
                              enabled=cfg.precision == "bf16")
    for lo in range(0, y.shape[0], TEST_BATCH):
        xb = task.test_images[lo : lo + TEST_BATCH].to(cfg.device, torch.float32)
        with autocast:
            pred = model(xb.contiguous(memory_format=memory_format)).argmax(dim=1)
        correct[lo : lo + TEST_BATCH] = (pred == y[lo : lo + TEST_BATCH]).float()
    hits = torch.bincount(y, weights=correct, minlength=task.num_classes)
    counts = torch.bincount(y, minlength=task.num_classes).clamp(min=1)
    per_class = (100.0 * hits.double() / counts).tolist()  # the one host sync of the run
    return 100.0 * float(hits.sum().double()) / y.shape[0], tuple(per_class)
