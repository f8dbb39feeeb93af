"""The pieces every leaderboard table is made of: the Table type and the cell formats."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from evaluator.registry import CHALLENGE_DATASETS, REGISTRY
from evaluator.stats import Estimate

from . import results


@dataclass
class Table:
    """Cells hold plain text; to_markdown escapes them, except the `trusted` columns (links the
    harness writes itself)."""
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    note: str = ""  # Markdown written by the harness
    trusted: tuple[str, ...] = ()


def frame(rows: list[results.Result]) -> pd.DataFrame:
    """The results as a DataFrame in file (= time) order, one column per Result field."""
    df = pd.DataFrame([r.to_json() for r in rows], columns=list(results.COLUMNS))
    return df.astype({"standard": bool})


def latest(df: pd.DataFrame, *keys: str) -> pd.DataFrame:
    return df.drop_duplicates(subset=list(keys), keep="last")


def dataset_order(names) -> list[str]:
    """Challenge datasets first, then the others in registry order."""
    return [d for d in dict.fromkeys((*CHALLENGE_DATASETS, *REGISTRY)) if d in set(names)]


def present(value) -> bool:
    """Not None, NaN (pandas' missing float) or empty."""
    return value is not None and value == value and value != ""


def _text(value) -> str:
    """A cell's text: whole numbers as integers (pandas stores an int column with gaps as floats)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def joined(values) -> str:
    values = [_text(v) for v in values if present(v)]
    return "" if not values else values[0] if len(set(values)) == 1 else " / ".join(values)


def estimate(row) -> Estimate:
    return Estimate.of(list(row["acc_runs"]))


def score_cell(row) -> str:
    """mean ± sample std (95 % CI of the mean); one run: its accuracy alone."""
    if len(row["acc_runs"]) < 2:
        return f"{row['acc_mean']:.2f}"
    text = f"{row['acc_mean']:.2f} ± {row['acc_std']:.2f}"
    ci = row["acc_ci95"]
    return text if not present(ci) else f"{text} ({row['acc_mean'] - ci:.2f}–{row['acc_mean'] + ci:.2f})"
