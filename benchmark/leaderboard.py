"""leaderboard/LEADERBOARD.md: generated from results.csv after every change, never by hand.

Per track a ranked table of standard results (the latest per team and dataset), the reference
rows of `bench baseline`, non-standard rows apart and unranked, the latest rejections and
failures, and the published ECCV 2024 results in their own section.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from evaluator.data import CHALLENGE_DATASETS, REGISTRY
from evaluator.atomic import atomic_write

from . import grids, results

TRACK_TITLES = {"fixed-ipc": "Track 1: fixed IPC", "generative": "Track 2: generative"}
PUBLISHED = Path(__file__).parent / "published_eccv2024.yaml"


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    note: str = ""


def _latest(rows: list[dict], *keys: str) -> list[dict]:
    """The last row (file order is time order) for each distinct combination of keys."""
    last: dict[tuple, dict] = {}
    for row in rows:
        last[tuple(row[k] for k in keys)] = row
    return list(last.values())


def _dataset_order(names: set[str]) -> list[str]:
    """Challenge datasets first, then the others in registry order."""
    return [d for d in dict.fromkeys((*CHALLENGE_DATASETS, *REGISTRY)) if d in names]


def _joined(values: list[str]) -> str:
    values = [v for v in values if v]
    return values[0] if len(set(values)) == 1 else " / ".join(values)


def _score(row: dict) -> str:
    return f"{float(row['acc_mean']):.2f} ± {float(row['acc_std']):.2f}"


def _date(rows: list[dict]) -> str:
    return max(r["timestamp"] for r in rows)[:10]


def _entry_tables(title: str, rows: list[dict], ranked: bool, generative: bool) -> Table:
    datasets = _dataset_order({r["dataset"] for r in rows})
    challenge = [d for d in datasets if d in CHALLENGE_DATASETS]
    columns = ["#"] * ranked + ["team", "method"] * ranked + ["reference"] * (not ranked) + datasets
    columns += ["overall"] * bool(challenge) + ["IPC", "epochs"] + ["gen time"] * generative
    columns += ["class spread", "date", "device"] + ["samples"] * ranked
    entries = []
    for team in dict.fromkeys(r["team"] for r in rows):
        mine = {r["dataset"]: r for r in rows if r["team"] == team}
        used = [mine[d] for d in datasets if d in mine]
        overall = (statistics.fmean(float(mine[d]["acc_mean"]) for d in CHALLENGE_DATASETS)
                   if all(d in mine for d in CHALLENGE_DATASETS) else None)
        key = (overall is not None, overall if overall is not None else statistics.fmean(float(r["acc_mean"]) for r in used))
        cells = [_score(mine[d]) if d in mine else "—" for d in datasets]
        cells += [f"{overall:.2f}" if overall is not None else "—"] * bool(challenge)
        cells += [_joined([r["ipc"] for r in used]), _joined([r["epochs"] for r in used])]
        cells += [_joined([f"{float(r['gen_seconds']):.0f} s" for r in used if r["gen_seconds"]])] * generative
        cells += [_joined([f"{float(r['class_spread']):.1f}" for r in used]), _date(used),
                  _joined([r["device"] for r in used])]
        if ranked:
            links = " ".join(f"[{d}](grids/{grids.grid_name(team, d)})" for d in datasets if d in mine)
            cells = [team, used[-1]["method"], *cells, links]
        else:
            cells = [team, *cells]
        entries.append((key, cells))
    entries.sort(key=lambda e: e[0], reverse=True)
    table = Table(title, columns)
    for rank, (_, cells) in enumerate(entries, 1):
        table.rows.append([str(rank), *cells] if ranked else cells)
    return table


def build_tables(rows: list[dict]) -> list[Table]:
    ok = [r for r in rows if r["status"] == "ok"]
    standard = [r for r in ok if r["standard"] == "true"]
    tables = []
    for track, title in TRACK_TITLES.items():
        mine = _latest([r for r in standard if r["track"] == track], "team", "dataset")
        table = _entry_tables(title, mine, ranked=True, generative=track == "generative") if mine else Table(title, [])
        table.note = "" if mine else "No results yet."
        tables.append(table)
    refs = _latest([r for r in standard if r["track"] == "reference"], "team", "dataset")
    if refs:
        tables.append(_entry_tables("Reference rows (this harness, `bench baseline`)", refs, ranked=False, generative=False))
    odd = _latest([r for r in ok if r["standard"] != "true"], "track", "team", "dataset", "nonstandard")
    if odd:
        t = Table("Non-standard runs (not ranked)",
                  ["track", "team", "dataset", "accuracy", "IPC", "epochs", "gen time", "override", "date"])
        t.rows = [[r["track"], r["team"], r["dataset"], _score(r), r["ipc"], r["epochs"],
                   f"{float(r['gen_seconds']):.0f} s" if r["gen_seconds"] else "—", r["nonstandard"],
                   r["timestamp"][:10]] for r in odd]
        tables.append(t)
    bad = [r for r in _latest(rows, "team", "dataset") if r["status"] != "ok"]
    if bad:
        t = Table("Rejected or failed (latest attempt)", ["team", "dataset", "status", "reason", "date"])
        t.rows = [[r["team"], r["dataset"] or "—", r["status"], r["error"], r["timestamp"][:10]] for r in bad]
        tables.append(t)
    return tables


@lru_cache(maxsize=1)
def published_table() -> Table:
    data = yaml.safe_load(PUBLISHED.read_text())
    t = Table("Published ECCV 2024 final results (not produced by this harness)",
              ["track", "rank", "team", "cifar100", "tinyimagenet", "overall"], note=f"Source: {data['source']}.")
    for r in data["rows"]:
        t.rows.append([r["track"], str(r["rank"] or "—"), r["team"], f"{r['cifar100']:.2f}",
                       f"{r['tinyimagenet']:.2f}", f"{r['overall']:.2f}"])
    return t


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(tables: list[Table]) -> str:
    lines = ["# Leaderboard", "",
             "Generated from `results.csv` by the harness (`bench leaderboard`); do not edit by hand.",
             "Scores: test accuracy (%) of ConvNetD3-W128 trained on the submitted images, mean ± std over runs;",
             "overall = mean over the challenge datasets (CIFAR-100, Tiny-ImageNet). Class spread = std over",
             "classes of the per-class accuracy: a high spread flags classes the images do not teach (mode collapse).",
             ""]
    for t in [*tables, published_table()]:
        lines += [f"## {t.title}", ""]
        if t.note:
            lines += [t.note, ""]
        if t.columns and t.rows:
            lines.append("| " + " | ".join(t.columns) + " |")
            lines.append("|" + "---|" * len(t.columns))
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in t.rows]
            lines.append("")
    return "\n".join(lines)


def write(root: Path) -> Path:
    """Regenerate LEADERBOARD.md from results.csv (the caller holds the results lock)."""
    path = root / "leaderboard" / "LEADERBOARD.md"
    text = to_markdown(build_tables(results.read_rows(root)))
    atomic_write(path, lambda tmp: tmp.write_text(text))
    return path
