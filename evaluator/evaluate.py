"""Several seeded runs of the protocol on one image set, and their summary.

Runs already finished (e.g. persisted before an interruption) are passed in `done` and are
not trained again; `on_run` is called after each new run so the caller can persist it.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Callable, Sequence

from .stats import Estimate, sample_std
from .train import RunResult, Task, TrainConfig, train_and_test


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
        """Sample standard deviation over runs (n - 1; many DD papers print numpy's n instead)."""
        return sample_std(self.accuracies)

    @property
    def ci95(self) -> float | None:
        """Half-width of the 95 % confidence interval of the mean (Student's t); None for one run."""
        return Estimate.of(self.accuracies).ci95

    @property
    def per_class_mean(self) -> list[float]:
        return [statistics.fmean(vals) for vals in zip(*(r.per_class for r in self.runs))]

    @property
    def class_spread(self) -> float:
        """Std over classes of the run-averaged per-class accuracy: high values flag classes the
        image set does not teach at all (e.g. a mode-collapsed generator)."""
        return statistics.pstdev(self.per_class_mean)

    @property
    def parameters(self) -> int:
        return self.runs[0].parameters

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.runs)


def evaluate(
    task: Task,
    cfg: TrainConfig,
    seeds: Sequence[int],
    *,
    done: dict[int, RunResult] | None = None,
    on_run: Callable[[RunResult], None] | None = None,
    on_pass: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """Train one independent model per seed and test each final model."""
    done = dict(done or {})
    results = []
    for s in seeds:
        if s not in done:
            done[s] = train_and_test(task, cfg, s, on_pass)
            if on_run is not None:
                on_run(done[s])
        results.append(done[s])
    return Evaluation(runs=tuple(results), epochs=cfg.epochs)
