"""Where a result came from: library and harness versions, and the git commit of the harness.

The commit is marked "-dirty" only when the harness itself differs from it: a tracked file other
than the harness's outputs (leaderboard/) and its inputs (submissions/) is modified, or an
untracked file sits in one of the packages. Writing results never makes the next row dirty.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

OUTPUTS_AND_INPUTS = ("leaderboard", "submissions")
CODE = ("benchmark/", "evaluator/")


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def git_commit(root: Path | None) -> str:
    if root is None:
        return ""
    head = _git(root, "rev-parse", "--short=12", "HEAD")
    if not head:
        return ""
    excludes = [f":(exclude){p}" for p in OUTPUTS_AND_INPUTS]
    status = _git(root, "status", "--porcelain", "--untracked-files=all", "--", ".", *excludes) or ""
    dirty = any(not line.startswith("??") or line[3:].startswith(CODE) for line in status.splitlines() if line)
    return head.strip() + ("-dirty" if dirty else "")


def environment(root: Path | None) -> dict[str, str]:
    """The provenance fields of a Result."""
    import torch

    from . import __version__

    return {"torch_version": torch.__version__, "harness_version": __version__, "git_commit": git_commit(root)}
