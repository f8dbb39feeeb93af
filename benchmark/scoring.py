"""Scoring one image set for one dataset, then recording it: shared by every track.

Three steps, as in any evaluation harness: compute (`evaluate_job`: train the runs, resuming from
finished ones, and return a Result), save (`record`: grid, CSV row, regenerated leaderboard, under
the results lock), display (one line on the terminal). `score` strings them together and skips an
evaluation identical to one that already succeeded. A problem with the submission becomes a
status row (never a score); a problem with the harness set-up (a dataset not prepared) is raised.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from filelock import FileLock
from torch import Tensor

from evaluator import archs
from evaluator.data import Dataset, missing_message, tensor_digest
from evaluator.errors import DatasetError
from evaluator.evaluate import Evaluation, evaluate
from evaluator.leakage import LeakReport, check_leakage
from evaluator.train import Task, TrainConfig, should_compile

from . import grids, leaderboard, provenance, results, runstate, signing
from .console import error, info, pass_progress, warn
from .protocol import Protocol
from .submission import current_hashes
from .options import Options, device_name
from .results import Result, Status
from .text import relative_paths

SKIPPED = "skipped"


@dataclass(frozen=True)
class Outcome:
    team: str
    dataset: str
    status: str  # a Status value, or "skipped"
    message: str
    result: Result | None = None

    @property
    def failed(self) -> bool:
        return self.status not in (Status.OK.value, SKIPPED)


@dataclass(frozen=True)
class Job:
    """An image set ready to score, and the fields of its row known before training."""
    ds: Dataset  # the dataset: test set, classes, normalisation
    fields: dict  # team, method, track, dataset, submission_sha256 (+ generation fields) and describe()
    images: Tensor  # normalised float32 N x 3 x H x W
    labels: Tensor
    preview: Tensor  # uint8 images for the sample grid
    ipc: int
    protocol_epochs: int  # what the track's rule gives, before any override
    key_fields: dict = field(default_factory=dict)  # what else makes two evaluations identical
    leak: LeakReport | None = None  # the leakage check's findings (None: not checked yet)
    leak_checked: bool = True  # False: the training set itself (the full-data reference), never checked


def check_job(protocol: Protocol, job: Job, device: str = "cpu") -> Job:
    """The leakage check of the job's images against its dataset's test set, before training:
    the row records how many images match, and is flagged past the protocol's fraction."""
    params, ds = protocol.leakage, job.ds
    if params is None or job.leak is not None or not job.leak_checked:
        return job
    if ds.train_images is None:
        raise DatasetError(f"{missing_message(ds.info.name)}: the leakage check compares with the training split")
    name = f"{job.fields['team']}/{ds.info.name}"
    report = check_leakage(job.preview.to(device), job.labels, ds.test_images, ds.test_labels, ds.train_images, params)
    if report.flagged:
        warn(f"{name}: leakage check: {report.matched} of {report.checked} images are near copies of test images; "
             f"the row is flagged: listed apart, never ranked")
    else:
        info(f"{name}: leakage check: {report.matched} of {report.checked} images match test images "
             f"(flagged above {params.max_fraction:.0%}; {report.seconds:.1f} s)")
    return replace(job, fields={**job.fields, "leaked": report.matched, "flagged": report.flagged}, leak=report)


def standard_fields(opts: Options, protocol_epochs: int | None, generation_dataset: str | None = None) -> dict:
    """`standard` and `nonstandard`, as Options.deviations decides them."""
    deviations = opts.deviations(protocol_epochs, generation_dataset)
    return {"standard": not deviations, "nonstandard": " ".join(deviations)}


def describe(opts: Options, protocol_epochs: int | None = None, generation: bool = False, **identity) -> dict:
    """The fields every row of an evaluation carries: its identity, the effective protocol,
    whether it is standard, and provenance."""
    return {**identity, "runs": opts.runs, "seeds": opts.seeds, "precision": opts.precision,
            **standard_fields(opts, protocol_epochs, identity.get("dataset") if generation else None),
            "device": device_name(opts.device), "protocol_version": opts.protocol.label,
            **provenance.environment(opts.project_if_any)}


def protocol_key(opts: Options, ds: Dataset, job_fields: dict, key_fields: dict) -> str:
    """What makes two evaluations identical: submission, dataset and test set, protocol, options."""
    ident = {"track": job_fields["track"], "team": job_fields["team"], "dataset": ds.info.name,
             "submission": job_fields.get("submission_sha256", ""), "test": ds.test_digest,
             **opts.identity(), **key_fields}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


def previous_result(opts: Options, key: str, name: str) -> Outcome | None:
    """The identical evaluation that already succeeded (its row verifies, where rows are signed),
    unless --force. name: team/dataset[/arch]."""
    root = opts.project
    previous = None if opts.force else results.find_ok(root, key, signing.load_key(root))
    if previous is None:
        return None
    message = (f"{name}: identical submission and protocol already evaluated on "
               f"{previous.timestamp} ({previous.acc_mean} %); skipped, use --force to re-evaluate")
    return Outcome(previous.team, previous.dataset, SKIPPED, message, previous)


def record(root: Path, result: Result, preview: tuple[Tensor, Tensor, int] | None = None,
           leaks: tuple[Tensor, Tensor] | None = None) -> Result:
    """Grids, row (signed when a key is configured) and leaderboard, under the results lock;
    returns the row as stored. Submission folders are hashed before the lock is taken.
    leaks: the (submitted, test) images of the leakage check's matches, for their grid."""
    key = signing.load_key(root)
    hashes = current_hashes(root)
    with results.locked(root):
        folder = root / "leaderboard" / "grids"
        if preview is not None:
            grids.save_grid(folder / grids.grid_name(result.team, result.dataset), *preview)
        if leaks is not None:
            grids.save_pairs(folder / grids.leak_grid_name(result.team, result.dataset), *leaks)
        stored = results.append_result(root, result, key)
        try:
            leaderboard.write(root, hashes)
        except Exception as exc:  # noqa: BLE001 — the row is in; the page is regenerated by the next write
            error(f"LEADERBOARD.md was not regenerated ({type(exc).__name__}: {exc}); the row is recorded; "
                  f"run bench leaderboard after fixing the cause")
    return stored


def reject(opts: Options, job_fields: dict, status: Status, reason: str) -> Outcome:
    """A status row (never a score) and one line on the terminal."""
    stored = record(opts.project, Result(**job_fields, status=status, error=relative_paths(reason, opts.project)))
    error(f"{stored.team}/{stored.dataset or '-'}: {stored.error}")
    return Outcome(stored.team, stored.dataset, status.value, stored.error, stored)


def evaluate_job(opts: Options, unit: Unit, fresh: bool = False) -> Result:
    """Train every run not finished yet (each finished run is saved for resuming) and summarise;
    fresh: train every run, neither reading nor saving finished ones (bench results verify)."""
    root, job, arch, run_key, name = opts.project, unit.job, unit.arch, unit.run_key, unit.name
    ds = job.ds
    done = {} if fresh else runstate.load_runs(root, run_key)
    if done:
        info(f"{name}: resuming, {len(done)} of {opts.runs} runs already finished")
    cfg = opts.train_config(job.protocol_epochs, arch)
    task = Task(job.images, job.labels, ds.normalize(ds.test_images), ds.test_labels, ds.info.num_classes)
    started = time.perf_counter()
    todo = sum(s not in done for s in opts.seeds)
    with pass_progress(name, todo * cfg.passes) as on_pass:
        ev = evaluate(task, cfg, opts.seeds, done=done, on_pass=on_pass,
                      on_run=None if fresh else lambda r: runstate.save_run(root, run_key, r))
    return Result(**job.fields, status=Status.OK, ipc=job.ipc, images=len(job.labels),
                  eval_seconds=time.perf_counter() - started, **summary(ev, cfg, len(job.labels)))


def summary(ev: Evaluation, cfg: TrainConfig, n_images: int) -> dict:
    """The Result fields of an evaluation's runs."""
    return dict(arch=cfg.arch, parameters=ev.parameters, epochs=cfg.epochs, acc_mean=ev.mean, acc_std=ev.std,
                acc_ci95=ev.ci95, acc_runs=tuple(ev.accuracies), acc_per_class=tuple(ev.per_class_mean),
                class_spread=ev.class_spread, compiled=should_compile(cfg, n_images))


def success(stored: Result, name: str) -> Outcome:
    """The terminal line and the outcome of a recorded score."""
    text = (f"{stored.acc_mean:.2f} ± {stored.acc_std:.2f} % over {stored.runs} runs (IPC {stored.ipc}, "
            f"{stored.epochs} epochs{'' if stored.standard else ', non-standard: ' + stored.nonstandard}"
            f"{', FLAGGED: images copied from the test set' if stored.flagged else ''})")
    info(f"{name}: {text}", style="green")
    return Outcome(stored.team, stored.dataset, Status.OK.value, text, stored)


def label(job: Job, arch: str) -> str:
    base = f"{job.fields['team']}/{job.ds.info.name}"
    return base if arch == archs.CHALLENGE else f"{base}/{arch}"


@dataclass(frozen=True)
class Unit:
    """One evaluation: a job trained with one architecture; its key names the result, its
    run_key the finished runs (keyed on the very images too: a generator may make others)."""
    job: Job
    arch: str
    key: str
    run_key: str

    @property
    def name(self) -> str:
        return label(self.job, self.arch)


def units(opts: Options, job: Job) -> list[Unit]:
    """One evaluation per architecture asked for, each trained on the same images."""
    images = tensor_digest(job.preview, job.labels)
    out = []
    for arch in opts.archs:
        key = protocol_key(opts, job.ds, job.fields, {**job.key_fields, "arch": arch})
        unit_job = replace(job, fields={**job.fields, "protocol_key": key})
        out.append(Unit(unit_job, arch, key, hashlib.sha256((key + images).encode()).hexdigest()))
    return out


def checked_units(opts: Options, job: Job) -> list[Unit]:
    """The job's units, after the leakage check unless every one is already recorded."""
    todo = units(opts, job)
    if any(previous_result(opts, unit.key, unit.name) is None for unit in todo):
        todo = units(opts, check_job(opts.protocol, job, opts.device))
    return todo


def score(opts: Options, job: Job) -> list[Outcome]:
    """Every architecture's evaluation of the job, one after the other."""
    return [_score_unit(opts, unit) for unit in checked_units(opts, job)]


def _score_unit(opts: Options, unit: Unit) -> Outcome:
    root, job, key, run_key, name = opts.project, unit.job, unit.key, unit.run_key, unit.name
    runstate.ensure_ignored(root)
    state = runstate.state_dir(root, run_key)
    state.mkdir(parents=True, exist_ok=True)
    with FileLock(str(state / "evaluating.lock")):  # a second identical evaluation waits, then skips
        previous = previous_result(opts, key, name)
        if previous is not None:
            info(previous.message)
            return previous
        if opts.force:
            runstate.clear_runs(root, run_key)
        try:
            result = evaluate_job(opts, unit)
        except (RuntimeError, ValueError, MemoryError) as exc:  # e.g. out of memory, a broken backend
            return reject(opts, {**job.fields, "arch": unit.arch, "ipc": job.ipc,
                                 "epochs": opts.epochs(job.protocol_epochs)},
                          Status.FAILED, f"evaluation failed: {exc}")
        stored = record(root, result, grid_of(opts, unit), leaks_of(opts, unit))
    return success(stored, name)


def grid_of(opts: Options, unit: Unit) -> tuple[Tensor, Tensor, int] | None:
    """The sample grid, written with the first architecture's row."""
    job = unit.job
    return (job.preview, job.labels, job.ds.info.num_classes) if unit.arch == opts.archs[0] else None


def leaks_of(opts: Options, unit: Unit) -> tuple[Tensor, Tensor] | None:
    """The matched (submitted, test) image pairs, written with the first architecture's row."""
    job = unit.job
    if unit.arch != opts.archs[0] or job.leak is None or not job.leak.matches:
        return None
    pairs = job.leak.matches
    return (job.preview[[m.image for m in pairs]], job.ds.test_images[[m.test_image for m in pairs]])
