"""Scoring one image set for one dataset and recording the result: shared by every track.

The flow of `score`: skip if an identical evaluation already succeeded (unless --force), resume
from finished runs, train the remaining runs, then write the sample grid, the row and the
regenerated leaderboard under the results lock. A problem with the submission becomes a status
row (never a score); a problem with the harness set-up (a dataset not prepared) is raised.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock
from torch import Tensor

from evaluator.data import Dataset, tensor_digest
from evaluator.errors import one_line
from evaluator.evaluate import evaluate

from . import grids, leaderboard, results
from .options import Options, device_name
from .console import info, pass_progress
from .protocol import Protocol


@dataclass(frozen=True)
class Outcome:
    team: str
    dataset: str
    status: str  # ok | invalid | failed | timeout | skipped
    message: str
    row: dict = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status not in ("ok", "skipped")


@dataclass(frozen=True)
class Job:
    """An image set ready to score, and the identity columns of its row."""
    row: dict  # team, method, track, dataset, submission_sha256 (+ generation columns)
    images: Tensor  # normalised float32 N x 3 x H x W
    labels: Tensor
    preview: Tensor  # uint8 images for the sample grid
    ipc: int
    epochs: int  # the protocol's, before any --epochs override
    key_fields: dict = field(default_factory=dict)  # what else makes two evaluations identical


def base_row(opts: Options, protocol: Protocol, **identity) -> dict:
    reasons = [f"epochs={opts.epochs}" if opts.epochs is not None else "",
               f"budget={opts.budget:g}s" if opts.budget is not None else "",
               "no-sandbox" if not opts.sandbox else ""]
    return {**identity, "runs": opts.runs, "standard": opts.standard, "nonstandard": " ".join(r for r in reasons if r),
            "device": device_name(opts.device), "precision": opts.precision, "protocol_version": protocol.version,
            **results.environment_columns(opts.project)}


def protocol_key(opts: Options, protocol: Protocol, ds: Dataset, row: dict, key_fields: dict) -> str:
    """What makes two evaluations identical: submission, dataset and test set, protocol, options."""
    fields = {"track": row["track"], "team": row["team"], "dataset": ds.info.name,
              "submission": row.get("submission_sha256", ""), "epochs": opts.epochs, "runs": opts.runs,
              "seed": opts.seed, "precision": opts.precision, "protocol": protocol.version,
              "test": ds.test_digest, **key_fields}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def previous_result(opts: Options, key: str, team: str, dataset: str) -> Outcome | None:
    """The identical evaluation that already succeeded, unless --force."""
    previous = None if opts.force else results.find_ok(opts.project, key)
    if previous is None:
        return None
    message = (f"{team}/{dataset}: identical submission and protocol already evaluated on "
               f"{previous['timestamp']} ({previous['acc_mean']} %); skipped, use --force to re-evaluate")
    info(message)
    return Outcome(team, dataset, "skipped", message, previous)


def record(root: Path, row: dict, preview: tuple[Tensor, Tensor, int] | None = None) -> None:
    """Grid, row and leaderboard, all under the results lock."""
    with results.locked(root):
        if preview is not None:
            grids.save_grid(root / "leaderboard" / "grids" / grids.grid_name(row["team"], row["dataset"]), *preview)
        results.append_row(root, row)
        leaderboard.write(root)


def record_status(root: Path, row: dict, status: str, error: str) -> Outcome:
    message = one_line(error)
    record(root, {**row, "status": status, "error": message})
    return Outcome(row["team"], row["dataset"], status, message, row)


def score(opts: Options, protocol: Protocol, ds: Dataset, job: Job) -> Outcome:
    root = opts.project
    team, dataset = job.row["team"], ds.info.name
    epochs = opts.epochs if opts.epochs is not None else job.epochs
    key = protocol_key(opts, protocol, ds, job.row, job.key_fields)
    # Finished runs are keyed on the very images too: a generator may produce others next time.
    run_key = hashlib.sha256((key + tensor_digest(job.preview, job.labels)).encode()).hexdigest()
    results.ensure_ignored(root)
    state = results.state_dir(root, run_key)
    state.mkdir(parents=True, exist_ok=True)
    with FileLock(str(state / "evaluating.lock")):  # a second identical evaluation waits, then skips
        previous = previous_result(opts, key, team, dataset)
        if previous is not None:
            return previous
        if opts.force:
            results.clear_runs(root, run_key)
        done = results.load_runs(root, run_key)
        if done:
            info(f"{team}/{dataset}: resuming, {len(done)} of {opts.runs} runs already finished")
        cfg = opts.train_config(epochs)
        row = {**job.row, "ipc": job.ipc, "epochs": epochs, "protocol_key": key}
        started = time.perf_counter()
        try:
            with pass_progress(f"{team}/{dataset}", (opts.runs - len(done)) * cfg.passes) as on_pass:
                ev = evaluate(job.images, job.labels, ds.normalize(ds.test_images), ds.test_labels, ds.info.num_classes,
                              cfg, opts.runs, opts.seed, done=done, on_pass=on_pass,
                              on_run=lambda r: results.save_run(root, run_key, r))
        except (RuntimeError, ValueError, MemoryError) as exc:  # e.g. out of memory, a broken backend
            return record_status(root, row, "failed", f"evaluation failed: {exc}")
        row.update(status="ok", acc_mean=ev.mean, acc_std=ev.std, acc_runs=[round(a, 4) for a in ev.accuracies],
                   seeds=[r.seed for r in ev.runs], class_spread=ev.class_spread,
                   eval_seconds=time.perf_counter() - started)
        record(root, row, (job.preview, job.labels, ds.info.num_classes))
    info(f"[green]{team}/{dataset}[/]: {ev.mean:.2f} ± {ev.std:.2f} % over {opts.runs} runs "
         f"(IPC {job.ipc}, {epochs} epochs{'' if opts.standard else ', non-standard'})")
    return Outcome(team, dataset, "ok", f"{ev.mean:.2f} ± {ev.std:.2f} %", row)
