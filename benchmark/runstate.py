"""Finished runs of an evaluation in progress: leaderboard/.runs/<key>/seed-<N>.json.

An interrupted evaluation resumes from them; a damaged record is trained again, never trusted.
The folder is the harness's scratch space and stays out of version control.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from evaluator.atomic import atomic_write_text
from evaluator.train import RunResult


def state_dir(root: Path, key: str) -> Path:
    return root / "leaderboard" / ".runs" / key[:32]


def load_runs(root: Path, key: str) -> dict[int, RunResult]:
    return {seed: run for seed, (run, _) in load_runs_with_workers(root, key).items()}


def load_runs_with_workers(root: Path, key: str) -> dict[int, tuple[RunResult, int | None]]:
    """Finished runs by seed, each with the rank of the process that trained it (None: alone)."""
    done = {}
    for path in sorted(state_dir(root, key).glob("seed-*.json")):
        try:
            data = json.loads(path.read_text())
            worker = data.pop("worker", None)
            done[data["seed"]] = (RunResult(**{**data, "per_class": tuple(data["per_class"])}), worker)
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
            path.unlink(missing_ok=True)
    return done


def save_run(root: Path, key: str, result: RunResult, worker: int | None = None) -> None:
    data = {**asdict(result), **({"worker": worker} if worker is not None else {})}
    atomic_write_text(state_dir(root, key) / f"seed-{result.seed}.json", json.dumps(data))


def clear_runs(root: Path, key: str) -> None:
    for path in state_dir(root, key).glob("seed-*.json"):
        path.unlink(missing_ok=True)


def ensure_ignored(root: Path) -> None:
    """Keep the run state out of version control even in a project without our .gitignore."""
    ignore = root / "leaderboard" / ".runs" / ".gitignore"
    if not ignore.exists():
        ignore.parent.mkdir(parents=True, exist_ok=True)
        ignore.write_text("*\n")
