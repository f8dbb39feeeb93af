"""The anytime curve of a generator: its score as a function of the time it was given.

A generation's main row holds the images complete when the generator stopped (`anytime` 1 when
its curve was made); its curve points (rows with `anytime` < 1, never ranked) the images complete
by fractions of its budget, each scored
with the IPC-epoch table at its own IPC. A point is scored once per distinct image set, at the
earliest fraction it existed, and the main row's images existed from the generator's last moment
(`gen_seconds`) on, so the curve is a step function: each score holds from its time to the next.
It is drawn as a small SVG chart (numbers only: nothing a team wrote goes into it).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from evaluator.atomic import atomic_write_text

from evaluator.registry import REGISTRY

from .grids import grid_name
from .tables import Table, present

WIDTH, HEIGHT, LEFT, BOTTOM, TOP, RIGHT = 360, 200, 46, 34, 12, 12


@dataclass(frozen=True)
class Point:
    fraction: float  # of the budget: from when these images existed
    accuracy: float
    ci95: float
    ipc: int


def chart_name(team: str, dataset: str) -> str:
    return grid_name(team, dataset).removesuffix(".png") + "-anytime.svg"


def points_of(main: pd.Series, points: pd.DataFrame) -> list[Point]:
    """The curve of one generation: its point rows, then the main row where its images existed."""
    out = [Point(float(r["anytime"]), float(r["acc_mean"]), _ci(r), int(r["ipc"])) for _, r in points.iterrows()]
    given = main["budget_effective"] if present(main["budget_effective"]) else main["budget_seconds"]
    done = min(1.0, float(main["gen_seconds"]) / float(given)) if present(main["gen_seconds"]) and given else 1.0
    out.append(Point(max(done, max((p.fraction for p in out), default=0.0)), float(main["acc_mean"]), _ci(main),
                     int(main["ipc"])))
    return sorted(out, key=lambda p: p.fraction)


def _ci(row) -> float:
    return float(row["acc_ci95"]) if present(row["acc_ci95"]) else 0.0


def svg(points: list[Point], budget: float) -> str:
    """The step chart: accuracy (%) against the seconds of the budget (on its target device)."""
    lo = max(0.0, min(p.accuracy - p.ci95 for p in points) - 5)
    hi = min(100.0, max(p.accuracy + p.ci95 for p in points) + 5)
    hi = hi if hi > lo else lo + 1

    def x(f: float) -> float:
        return LEFT + f * (WIDTH - LEFT - RIGHT)

    def y(acc: float) -> float:
        return HEIGHT - BOTTOM - (acc - lo) / (hi - lo) * (HEIGHT - BOTTOM - TOP)

    steps = []
    for i, p in enumerate(points):
        end = points[i + 1].fraction if i + 1 < len(points) else 1.0
        steps.append(f"M{x(p.fraction):.1f},{y(p.accuracy):.1f} H{x(end):.1f}")
        if i + 1 < len(points):
            steps.append(f"V{y(points[i + 1].accuracy):.1f}")
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
              f'font-family="sans-serif" font-size="10">'),
             '<rect width="100%" height="100%" fill="white"/>',
             f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" stroke="black"/>',
             f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="black"/>']
    for f in (0, 0.25, 0.5, 0.75, 1):
        parts.append(f'<text x="{x(f):.1f}" y="{HEIGHT - BOTTOM + 12}" text-anchor="middle">{f * budget:.0f}</text>')
    for acc in (lo, (lo + hi) / 2, hi):
        parts.append(f'<text x="{LEFT - 4}" y="{y(acc) + 3:.1f}" text-anchor="end">{acc:.0f}</text>')
    parts.append(f'<text x="{(LEFT + WIDTH - RIGHT) / 2:.0f}" y="{HEIGHT - 4}" text-anchor="middle">'
                 f'seconds of the budget (on the target device)</text>')
    parts.append(f'<text x="10" y="{(TOP + HEIGHT - BOTTOM) / 2:.0f}" text-anchor="middle" '
                 f'transform="rotate(-90 10 {(TOP + HEIGHT - BOTTOM) / 2:.0f})">accuracy %</text>')
    parts.append(f'<path d="{" ".join(steps)}" fill="none" stroke="#1f77b4" stroke-width="2"/>')
    for p in points:
        if p.ci95:
            parts.append(f'<line x1="{x(p.fraction):.1f}" y1="{y(p.accuracy - p.ci95):.1f}" x2="{x(p.fraction):.1f}" '
                         f'y2="{y(p.accuracy + p.ci95):.1f}" stroke="#1f77b4"/>')
        parts.append(f'<circle cx="{x(p.fraction):.1f}" cy="{y(p.accuracy):.1f}" r="3" fill="#1f77b4"/>')
        parts.append(f'<text x="{x(p.fraction) + 4:.1f}" y="{y(p.accuracy) - 5:.1f}">IPC {p.ipc}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def curve_table(ok: pd.DataFrame, curve_rows: pd.DataFrame, folder: Path | None) -> Table | None:
    """The latest curve of every generator and dataset: main rows (in `ok`, `anytime` 1) with their
    points (`curve_rows`, the same generation), each chart written to `folder` (None: not written)."""
    mains = ok[(ok["anytime"] == 1) & ok["dataset"].isin(list(REGISTRY))]  # a hand-made row's dataset: not drawn
    if mains.empty:
        return None
    table = Table("Anytime curves (not ranked)", ["team", "dataset", "points (% of the budget: accuracy, IPC)", "chart"],
                  trusted=("chart",))
    for (team, dataset), group in mains.groupby(["team", "dataset"], sort=False):
        last = group[group["generation_id"] == group["generation_id"].iloc[-1]]
        main = last[last["arch"] == last["arch"].iloc[0]].iloc[-1]  # the points' network: the first asked for
        mine = curve_rows[(curve_rows["generation_id"] == main["generation_id"]) & (curve_rows["arch"] == main["arch"])]
        points = points_of(main, mine.drop_duplicates("anytime", keep="last"))
        name = chart_name(team, dataset)
        if folder is not None:
            atomic_write_text(folder / name, svg(points, float(main["budget_seconds"])))
        table.rows.append([team, dataset, "; ".join(f"{p.fraction:.0%}: {p.accuracy:.2f}, IPC {p.ipc}" for p in points),
                           f"![anytime curve](grids/{name})"])
    table.note = ("A generator's score with the images it had completed by each fraction of its budget (each scored "
                  "with the IPC-epoch table at its own IPC; the last point is the main row, placed where its images "
                  "were complete). The score holds from each point to the next. See docs/PROTOCOL.md, 'The anytime "
                  "curve'.")
    return table
