"""Honest summaries of a few noisy runs: sample std, a 95 % confidence interval of the mean, and
whether two scores differ beyond noise (Welch's t-test).

With 3 runs per score, two entries 0.5 points apart are often indistinguishable; a leaderboard
that ranks them anyway ranks noise. Student's t (not the normal) is used because n is tiny.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Iterable, Sequence

LEVEL = 0.95


def sample_std(values: Sequence[float]) -> float:
    """Sample standard deviation (n - 1 in the denominator); 0 for a single value."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


@dataclass(frozen=True)
class Estimate:
    """A mean, the variance of that mean, and its degrees of freedom."""
    mean: float
    var_mean: float
    df: float

    @classmethod
    def of(cls, values: Sequence[float]) -> "Estimate":
        n = len(values)
        return cls(statistics.fmean(values), sample_std(values) ** 2 / n, n - 1)

    @classmethod
    def average(cls, parts: Iterable["Estimate"]) -> "Estimate":
        """The mean of several independent estimates (e.g. the overall score over datasets);
        degrees of freedom by Welch-Satterthwaite."""
        parts = list(parts)
        k = len(parts)
        return cls(statistics.fmean(p.mean for p in parts), *_welch(*((p.var_mean / k**2, p.df) for p in parts)))

    def minus(self, other: "Estimate") -> "Estimate":
        """The difference of two independent estimates (e.g. a score less the random reference's),
        degrees of freedom by Welch-Satterthwaite."""
        return Estimate(self.mean - other.mean, *_welch((self.var_mean, self.df), (other.var_mean, other.df)))

    def over(self, other: "Estimate") -> "Estimate":
        """The ratio of two independent estimates (e.g. a score over the full-data score), its
        variance by the delta method: (a/b)^2 (var_a/a^2 + var_b/b^2)."""
        a, b = self.mean, other.mean
        parts = [(self.var_mean / b**2, self.df), (a**2 * other.var_mean / b**4, other.df)]
        return Estimate(a / b, *_welch(*parts))

    @property
    def ci95(self) -> float | None:
        """Half-width of the 95 % confidence interval of the mean; None without replicates."""
        if self.df < 1:
            return None
        from scipy import stats  # here: half a second to import, and only scores with replicates need it

        return float(stats.t.ppf(0.5 + LEVEL / 2, self.df)) * math.sqrt(self.var_mean)

    def differs(self, other: "Estimate") -> bool:
        """Welch's two-sided t-test at the 5 % level; without replicates nothing is shown to differ
        unless the means do and neither has spread."""
        if self.df < 1 or other.df < 1:
            return False
        gap = self.minus(other)
        if gap.var_mean == 0:
            return gap.mean != 0
        t = abs(gap.mean) / math.sqrt(gap.var_mean)
        from scipy import stats

        return bool(2 * stats.t.sf(t, gap.df) < 1 - LEVEL)


def _welch(*parts: tuple[float, float]) -> tuple[float, float]:
    """(variance, degrees of freedom) of a sum of independent terms, each (variance, df)."""
    var = sum(v for v, _ in parts)
    denom = sum(v**2 / d for v, d in parts if v > 0 and d > 0)
    return var, (var**2 / denom if denom > 0 else min(d for _, d in parts))
