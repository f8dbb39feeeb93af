"""leaderboard/results.csv: the source of truth, one row per (submission, dataset) evaluation.

Rows are appended under a file lock by rewriting the whole file to a temporary name and renaming
it, so concurrent runs lose nothing and a reader never sees half a file. Finished runs of an
evaluation in progress are kept in leaderboard/.runs/<key>/ so an interrupted one resumes.
"""
from __future__ import annotations

import csv
import io
import json
import subprocess
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

from filelock import FileLock

from evaluator.atomic import atomic_write
from evaluator.train import RunResult

from .errors import UsageError

COLUMNS = (
    "timestamp", "team", "method", "track", "dataset", "status", "error",
    "ipc", "epochs", "images_generated", "images_dropped", "gen_seconds", "budget_seconds",
    "runs", "acc_mean", "acc_std", "acc_runs", "seeds", "class_spread",
    "standard", "nonstandard", "sandbox", "device", "precision", "eval_seconds",
    "torch_version", "harness_version", "protocol_version", "git_commit", "submission_sha256", "protocol_key",
)
STATUSES = ("ok", "invalid", "failed", "timeout")
LOCK_TIMEOUT = 600  # seconds a writer waits for another


def results_path(root: Path) -> Path:
    return root / "leaderboard" / "results.csv"


@contextmanager
def locked(root: Path) -> Iterator[None]:
    """Exclusive access to results.csv and the files generated from it."""
    path = results_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT):
        yield


def read_rows(root: Path) -> list[dict[str, str]]:
    path = results_path(root)
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames and tuple(reader.fieldnames) != COLUMNS:
            missing = [c for c in COLUMNS if c not in reader.fieldnames]
            if missing:
                raise UsageError(f"{path}: header lacks columns {missing}; it was written by another harness version")
        return list(reader)


def _format(row: dict) -> dict[str, str]:
    unknown = set(row) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown result columns {sorted(unknown)}")
    if row.get("status") not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {row.get('status')!r}")
    out = {}
    for col in COLUMNS:
        value = row.get(col, "")
        if isinstance(value, (list, tuple)):
            value = json.dumps(list(value))
        elif isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, float):
            value = f"{value:.4f}".rstrip("0").rstrip(".") if value == value else ""
        elif value is None:
            value = ""
        out[col] = " ".join(str(value).split())  # one line per row, always
    return out


def append_row(root: Path, row: dict) -> None:
    """Append one row atomically; the caller holds `locked(root)`."""
    path = results_path(root)
    existing = path.read_text() if path.is_file() else ""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    if not existing:
        writer.writeheader()
    writer.writerow(_format({"timestamp": time.strftime("%Y-%m-%dT%H:%M:%S"), **row}))
    text = existing + buf.getvalue()
    atomic_write(path, lambda tmp: tmp.write_text(text))


def find_ok(root: Path, key: str) -> dict[str, str] | None:
    """The latest successful row with this protocol key, if any."""
    matches = [r for r in read_rows(root) if r["protocol_key"] == key and r["status"] == "ok"]
    return matches[-1] if matches else None


# -- per-run state of an evaluation in progress ------------------------------------------------

def state_dir(root: Path, key: str) -> Path:
    return root / "leaderboard" / ".runs" / key[:32]


def load_runs(root: Path, key: str) -> dict[int, RunResult]:
    done = {}
    for path in sorted(state_dir(root, key).glob("seed-*.json")):
        try:
            data = json.loads(path.read_text())
            done[data["seed"]] = RunResult(**{**data, "per_class": tuple(data["per_class"])})
        except (json.JSONDecodeError, KeyError, TypeError):
            path.unlink(missing_ok=True)  # a damaged record is retrained, never trusted
    return done


def save_run(root: Path, key: str, result: RunResult) -> None:
    path = state_dir(root, key) / f"seed-{result.seed}.json"
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(asdict(result))))


def clear_runs(root: Path, key: str) -> None:
    for path in state_dir(root, key).glob("seed-*.json"):
        path.unlink(missing_ok=True)


def git_commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    if out.returncode != 0:
        return ""
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def environment_columns(root: Path) -> dict[str, str]:
    import torch

    from . import __version__

    return {"torch_version": torch.__version__, "harness_version": __version__, "git_commit": git_commit(root)}


def ensure_ignored(root: Path) -> None:
    """Keep the run state out of version control even in a project without our .gitignore."""
    ignore = root / "leaderboard" / ".runs" / ".gitignore"
    if not ignore.exists():
        ignore.parent.mkdir(parents=True, exist_ok=True)
        ignore.write_text("*\n")
