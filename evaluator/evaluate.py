"""Several seeded runs of the protocol on one image set, and their summary.

Runs already finished (e.g. persisted before an interruption) are passed in `done` and are
not trained again; `on_run` is called after each new run so the caller can persist it.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Callable

from torch import Tensor

from .train import RunResult, TrainConfig, train_and_test


@dataclass(frozen=True)
class Evaluation:
    runs: tuple[RunResult, ...]
    epochs: int

    @property
    def accuracies(self) -> list[float]:
        return [r.accuracy for r in self.runs]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accuracies)

    @property
    def std(self) -> float:
        """Population standard deviation over runs (numpy's default, as DD papers report)."""
        return statistics.pstdev(self.accuracies) if len(self.runs) > 1 else 0.0

    @property
    def per_class_mean(self) -> list[float]:
        return [statistics.fmean(vals) for vals in zip(*(r.per_class for r in self.runs))]

    @property
    def class_spread(self) -> float:
        """Std over classes of the run-averaged per-class accuracy: high values flag classes the
        image set does not teach at all (e.g. a mode-collapsed generator)."""
        return statistics.pstdev(self.per_class_mean)

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.runs)


def run_seeds(seed: int, runs: int) -> list[int]:
    return [seed + i for i in range(runs)]


def evaluate(
    images: Tensor,
    labels: Tensor,
    test_images: Tensor,
    test_labels: Tensor,
    num_classes: int,
    cfg: TrainConfig,
    runs: int = 3,
    seed: int = 0,
    done: dict[int, RunResult] | None = None,
    on_run: Callable[[RunResult], None] | None = None,
    on_pass: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """Train `runs` independent models (seeds seed, seed+1, ...) and test each final model."""
    done = dict(done or {})
    results = []
    for s in run_seeds(seed, runs):
        if s not in done:
            done[s] = train_and_test(images, labels, test_images, test_labels, num_classes, cfg, s, on_pass)
            if on_run is not None:
                on_run(done[s])
        results.append(done[s])
    return Evaluation(runs=tuple(results), epochs=cfg.epochs)
