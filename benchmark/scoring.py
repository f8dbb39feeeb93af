"""Scoring one image set for one dataset, then recording it: shared by every track.

An image set (a `Job`) becomes one evaluation (a `Unit`) per architecture, named by its typed
`Identity`. Each unit is concluded by `conclude`, under its own lock: skipped when an identical
evaluation is recorded, else its runs are obtained — trained here one after the other
(`train_runs`), or, spread over processes, trained by each process (`train_run`, called by
`benchmark.distributed`) and read back — turned into a `Result` by the one function that does so
(`result_of`), and recorded (`record`). A problem with the submission becomes a status row
(never a score); a problem with the harness set-up (a dataset not prepared) is raised.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

from filelock import FileLock
from torch import Tensor

from evaluator import archs
from evaluator.data import Dataset, missing_message, tensor_digest
from evaluator.errors import DatasetError
from evaluator.evaluate import Evaluation
from evaluator.leakage import LeakReport, check_leakage
from evaluator.softlabels import SoftTargets
from evaluator.train import Task, TrainConfig, should_compile, train_and_test

from . import grids, provenance, results, runstate, signing
from .console import error, info, pass_progress, run_line, warn
from .protocol import Protocol
from .options import Options, device_name
from .results import Result, Status
from .teacher import Teacher
from .validate import SoftSet
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
    leak: LeakReport | None = None  # the leakage check's findings (None: not checked yet)
    leak_checked: bool = True  # False: the training set itself (the full-data reference), never checked
    pixels: Tensor | None = None  # float images: what is trained, in pixel units, neither rounded nor clipped
    points: tuple["Job", ...] = ()  # a generator's anytime curve: the images made by fractions of its budget
    soft: SoftSet | None = None  # the soft-label division: the submission's labels (stored, or the teacher's)
    teacher: Teacher | None = None  # the harness's teacher, for labels given online


def check_job(protocol: Protocol, job: Job, device: str = "cpu") -> Job:
    """The leakage check of the job's images against its dataset's test set, before training:
    the row records how many images match, and is flagged past the protocol's fraction."""
    params, ds = protocol.leakage, job.ds
    if params is None or job.leak is not None or not job.leak_checked:
        return job
    if ds.train_images is None:
        raise DatasetError(f"{missing_message(ds.info.name)}: the leakage check compares with the training split")
    name = f"{job.fields['team']}/{ds.info.name}"
    checked = job.pixels if job.pixels is not None else job.preview  # what is trained, not its clipped preview
    report = check_leakage(checked.to(device), job.labels, ds.test_images, ds.test_labels, ds.train_images, params)
    if report.flagged:
        warn(f"{name}: leakage check: {report.matched} of {report.checked} images are near copies of test images; "
             f"the row is flagged: listed apart, never ranked")
    else:
        info(f"{name}: leakage check: {report.matched} of {report.checked} images match test images "
             f"(flagged above {params.max_fraction:.0%}; {report.seconds:.1f} s)")
    return replace(job, fields={**job.fields, "leaked": report.matched, "flagged": report.flagged}, leak=report)


def standard_fields(opts: Options, protocol_epochs: int | None, generation_dataset: str | None = None,
                    clock: str = "") -> dict:
    """`standard` and `nonstandard`, as Options.deviations decides them."""
    deviations = opts.deviations(protocol_epochs, generation_dataset, clock)
    return {"standard": not deviations, "nonstandard": " ".join(deviations)}


def describe(opts: Options, protocol_epochs: int | None = None, generation: bool = False, **identity) -> dict:
    """The fields every row of an evaluation carries: its identity, the effective protocol,
    whether it is standard, and provenance."""
    return {**identity, "runs": opts.runs, "seeds": opts.seeds, "precision": opts.precision,
            **standard_fields(opts, protocol_epochs, identity.get("dataset") if generation else None),
            "device": device_name(opts.device), "protocol_version": opts.protocol.label,
            **provenance.environment(opts.project_if_any)}


@dataclass(frozen=True)
class Identity:
    """What makes two evaluations the same: the image set (team, submission files or selected
    images, dataset and its test set), the effective protocol, and what was trained. Its digest is
    a row's `protocol_key`; without `arch` it names a generation (the images a generator made)."""
    track: str
    team: str
    dataset: str
    submission: str  # sha256 of the submission's files (a reference: of the selected images)
    test: str  # digest of the test set (an imported reference file changes it)
    protocol: dict  # Options.identity(): protocol digest, seeds, precision, preset
    epochs: int | None = None  # an --epochs override that departs from the track's rule
    budget: float | None = None  # generation budget (generative track)
    sandbox: bool | None = None  # generative track
    arch: str = ""
    anytime: float | None = None  # a point of the anytime curve: the fraction of the budget
    labels: str = ""  # the soft-label division: stored | online | hard
    teacher: str = ""  # online: the teacher's weights (sha256, 16 digits)

    def digest(self) -> str:
        fields = asdict(self)
        for name in ("anytime", "labels", "teacher"):  # the identities of the hard-label tracks are as before
            if fields[name] in (None, ""):
                del fields[name]
        return hashlib.sha256(json.dumps(fields, sort_keys=True, default=list).encode()).hexdigest()


def identity(opts: Options, fields: dict, test: str, rule_epochs: int | None, arch: str = "") -> Identity:
    """fields: the row's team, track, dataset, submission_sha256 (and budget_seconds, sandbox for
    a generation); rule_epochs: what the track's rule gives (None for a generator: its IPC, hence
    its epochs, is only known after it ran, so only an --epochs override is part of the identity)."""
    generative = fields["track"] == "generative"
    return Identity(track=fields["track"], team=fields["team"], dataset=fields["dataset"],
                    submission=fields.get("submission_sha256", ""), test=test, protocol=opts.identity(),
                    epochs=opts.epochs_key(None if generative else rule_epochs),
                    budget=opts.budget(fields["dataset"]) if generative else None,
                    sandbox=opts.sandbox if generative else None, arch=arch, anytime=curve_point(fields),
                    labels=fields.get("labels", ""), teacher=fields.get("teacher", ""))


def curve_point(fields: dict) -> float | None:
    """The fraction of the budget of a curve point's images (None: a main row, whose `anytime` is
    1 when its curve was made, else empty)."""
    fraction = fields.get("anytime")
    return fraction if fraction is not None and fraction < 1 else None


def _clock_deviation(r: Result) -> bool:
    """A generation whose clock was unstable, clamped or mismatched: the machine's state, not
    part of what is evaluated, so it never stands for the evaluation (a later run tries again)."""
    return any(d in ("clock=unstable", "clock=clamped", "clock=mismatch") for d in r.nonstandard.split())


def previous_result(opts: Options, key: str, name: str) -> Outcome | None:
    """The identical evaluation that already succeeded (its row verifies, where rows are signed),
    unless --force. name: team/dataset[/arch]."""
    root = opts.project
    previous = None if opts.force else results.find_ok(root, key, signing.load_key(root))
    if previous is None or _clock_deviation(previous):
        return None
    message = (f"{name}: identical submission and protocol already evaluated on "
               f"{previous.timestamp} ({previous.acc_mean} %); skipped, use --force to re-evaluate")
    return Outcome(previous.team, previous.dataset, SKIPPED, message, previous)


def record(root: Path, result: Result, preview: tuple[Tensor, Tensor, int] | None = None,
           leaks: tuple[Tensor, Tensor] | None = None) -> Result:
    """Grids and the row (signed when a key is configured), under the results lock; returns the
    row as stored. The page is regenerated once per command (`leaderboard.refresh`).
    leaks: the (submitted, test) images of the leakage check's matches, for their grid."""
    key = signing.load_key(root)
    with results.locked(root):
        folder = root / "leaderboard" / "grids"
        if preview is not None:
            grids.save_grid(folder / grids.grid_name(result.team, result.dataset), *preview)
        if leaks is not None:
            grids.save_pairs(folder / grids.leak_grid_name(result.team, result.dataset), *leaks)
        return results.append_result(root, result, key)


def reject(opts: Options, job_fields: dict, status: Status, reason: str) -> Outcome:
    """A status row (never a score) and one line on the terminal."""
    stored = record(opts.project, Result(**job_fields, status=status, error=relative_paths(reason, opts.project)))
    error(f"{stored.team}/{stored.dataset or '-'}: {stored.error}")
    return Outcome(stored.team, stored.dataset, status.value, stored.error, stored)


def result_of(fields: dict, ipc: int, n_images: int, ev: Evaluation, cfg: TrainConfig) -> Result:
    """The one place a finished evaluation becomes a Result (every executor and bench evaluate)."""
    return Result(**fields, status=Status.OK, ipc=ipc, images=n_images, eval_seconds=ev.seconds, arch=cfg.arch,
                  parameters=ev.parameters, epochs=cfg.epochs, acc_mean=ev.mean, acc_std=ev.std, acc_ci95=ev.ci95,
                  acc_runs=tuple(ev.accuracies), acc_per_class=tuple(ev.per_class_mean),
                  class_spread=ev.class_spread, compiled=should_compile(cfg, n_images))


def success(stored: Result, name: str) -> Outcome:
    """The terminal line and the outcome of a recorded score."""
    info(f"{name}: {score_text(stored)}", style="green")
    return Outcome(stored.team, stored.dataset, Status.OK.value, score_text(stored), stored)


def score_text(r: Result) -> str:
    spread = f" ± {r.acc_std:.2f} % over {r.runs} runs" if r.runs and r.runs > 1 else " % (one run)"
    return (f"{r.acc_mean:.2f}{spread} (IPC {r.ipc}, {r.epochs} epochs"
            f"{'' if r.standard else ', non-standard: ' + r.nonstandard}"
            f"{', FLAGGED: images copied from the test set' if r.flagged else ''})")


def label(job: Job, arch: str) -> str:
    base = f"{job.fields['team']}/{job.ds.info.name}"
    base = base if arch == archs.CHALLENGE else f"{base}/{arch}"
    labels = job.fields.get("labels", "")
    base = base if not labels else f"{base} ({labels} labels)"
    fraction = curve_point(job.fields)
    return base if fraction is None else f"{base} at {fraction:g} of the budget"


@dataclass(frozen=True)
class Unit:
    """One evaluation: a job trained with one architecture; its key names the result, its
    run_key the finished runs (`run_key`: keyed on what is trained, the very images included: a
    generator may make others)."""
    job: Job
    arch: str
    key: str
    run_key: str

    @property
    def name(self) -> str:
        return label(self.job, self.arch)

    @property
    def labels(self) -> str:
        return self.job.fields.get("labels", "")

    def task(self, device: str = "cpu") -> Task:
        job, soft = self.job, None
        if self.labels in ("stored", "online"):
            temperature = job.soft.temperature
            soft = SoftTargets(temperature, targets=job.soft.targets) if self.labels == "stored" else \
                SoftTargets(temperature, teacher=job.teacher.on(device))
        return Task(job.images, job.labels, job.ds.normalized_test, job.ds.test_labels, job.ds.info.num_classes, soft)


def units(opts: Options, job: Job) -> list[Unit]:
    """One evaluation per architecture asked for, each trained on the same images; then one per
    point of the job's anytime curve, with the first architecture. A soft-label job is trained
    twice per architecture: towards its soft labels, and with its hard labels."""
    out = []
    for one, archs_ in [(job, opts.archs), *((point, opts.archs[:1]) for point in job.points)]:
        images = tensor_digest(one.images, one.labels)  # what is trained: floats unrounded, unclipped
        for arch in archs_:
            for labels in ((one.soft.mode, "hard") if one.soft is not None else ("",)):
                fields = {**one.fields, **label_fields(opts, one, labels, arch)}
                key = identity(opts, fields, one.ds.test_digest, one.protocol_epochs, arch).digest()
                unit_job = replace(one, fields={**fields, "protocol_key": key}, points=())
                out.append(Unit(unit_job, arch, key, run_key(opts, unit_job, arch, images)))
    return out


def run_key(opts: Options, job: Job, arch: str, images: str) -> str:
    """What a training run is a function of, and nothing else: the images and labels, what they
    are trained towards, the test set, the effective protocol, the epochs and the network. Two
    evaluations of the same images (a team's and a reference's, a hard-label twin and either)
    share their runs; the team, the track and how the images were made are not part of it.
    images: the digest of the very tensor trained (float images unrounded) and its labels."""
    soft = job.soft
    labels = job.fields.get("labels", "")
    made_of = {"protocol": opts.identity(), "test": job.ds.test_digest, "epochs": opts.epochs(job.protocol_epochs),
               "arch": arch, "labels": "" if labels == "hard" else labels,  # hard labels: trained as Track 1's
               "teacher": job.fields.get("teacher", ""),
               "targets": tensor_digest(soft.targets) if labels == "stored" else ""}
    return hashlib.sha256((json.dumps(made_of, sort_keys=True, default=list) + images).encode()).hexdigest()


def label_fields(opts: Options, job: Job, labels: str, arch: str) -> dict:
    """A soft-label division row's labels and what they cost: the bytes of the labels trained on
    and of the images; online, the teacher and the FLOPs of its forward passes over every run."""
    soft = job.soft
    if soft is None:
        return {}
    fields = {"labels": labels, "image_bytes": soft.image_bytes,
              "label_bytes": soft.hard_label_bytes if labels == "hard" else soft.label_bytes}
    if labels == "online":
        if opts.teacher_arch is not None:  # a teacher other than the protocol's: named, not ranked
            named = " ".join(x for x in (job.fields.get("nonstandard", ""), f"teacher={opts.teacher_arch}") if x)
            fields.update(standard=False, nonstandard=named)
        teacher, passes = job.teacher, opts.train_config(job.protocol_epochs, arch).passes
        fields.update(teacher=teacher.digest[:16], teacher_parameters=teacher.parameters,
                      teacher_acc=teacher.accuracy,
                      teacher_flops=float(teacher.flops_per_image * len(job.labels) * passes * opts.runs))
    return fields


def checked_units(opts: Options, job: Job) -> list[Unit]:
    """The job's units, after the leakage check unless every one is already recorded."""
    todo = units(opts, job)
    if any(previous_result(opts, unit.key, unit.name) is None for unit in todo):
        checked = check_job(opts.protocol, job, opts.device)
        todo = units(opts, replace(checked, points=tuple(check_job(opts.protocol, p, opts.device) for p in job.points)))
    return todo


def train_run(opts: Options, unit: Unit, seed: int, worker: int | None = None, task: Task | None = None,
              left: int = 0):
    """Train one run of a unit and save it for resuming; one line per run where no progress bar
    shows (a log file, CI, a launch over several processes), with the time the `left` runs of
    this process will take at this pace."""
    cfg = opts.train_config(unit.job.protocol_epochs, unit.arch)
    with pass_progress(f"{unit.name} seed {seed}", cfg.passes) as on_pass:
        run = train_and_test(task or unit.task(opts.device), cfg, seed, on_pass)
    runstate.save_run(opts.project, unit.run_key, run, worker=worker)
    eta = f"; {left} more run{'s' if left > 1 else ''} here, about {_duration(left * run.seconds)}" if left else ""
    run_line(f"{unit.name} seed {seed}: {run.accuracy:.2f} % ({_duration(run.seconds)}){eta}")
    return run


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def conclude(opts: Options, unit: Unit, runs: Callable[[], Evaluation | None]) -> Outcome | None:
    """Under the evaluation's own lock (a second identical evaluation waits, then skips): skip it
    if already recorded, else get its runs (train them, or read them back), build the Result and
    record it. None: runs are missing (a process of a launch died)."""
    state = runstate.state_dir(opts.project, unit.run_key)
    state.mkdir(parents=True, exist_ok=True)
    with FileLock(str(state / "evaluating.lock")):
        previous = previous_result(opts, unit.key, unit.name)
        if previous is not None:
            info(previous.message)
            return previous
        job = unit.job
        cfg = opts.train_config(job.protocol_epochs, unit.arch)
        try:
            ev = runs()
        except (RuntimeError, ValueError, MemoryError) as exc:  # e.g. out of memory, a broken backend
            return reject(opts, {**job.fields, "arch": unit.arch, "ipc": job.ipc, "epochs": cfg.epochs},
                          Status.FAILED, f"evaluation failed: {exc}")
        if ev is None:
            return None
        stored = record(opts.project, result_of(job.fields, job.ipc, len(job.labels), ev, cfg),
                        grid_of(opts, unit), leaks_of(opts, unit))
    return success(stored, unit.name)


def train_runs(opts: Options, unit: Unit) -> Evaluation:
    """Every run of a unit, in this process: finished runs are read back, the others trained."""
    root = opts.project
    if opts.force:
        runstate.clear_runs(root, unit.run_key)
    done = runstate.load_runs(root, unit.run_key)
    if done:
        info(f"{unit.name}: resuming, {len(done)} of {opts.runs} runs already finished (an interrupted evaluation, "
             f"or another row's of the very same images and training)")
    task = unit.task(opts.device)
    todo = [seed for seed in opts.seeds if seed not in done]
    for i, seed in enumerate(todo):
        done[seed] = train_run(opts, unit, seed, task=task, left=len(todo) - i - 1)
    return Evaluation(runs=tuple(done[s] for s in opts.seeds), epochs=opts.epochs(unit.job.protocol_epochs))


def score(opts: Options, job: Job) -> list[Outcome]:
    """Every architecture's evaluation of the job, one after the other, in this process."""
    runstate.ensure_ignored(opts.project)
    return [conclude(opts, unit, lambda unit=unit: train_runs(opts, unit)) for unit in checked_units(opts, job)]


def fresh_evaluation(opts: Options, unit: Unit) -> Result:
    """Every run trained afresh, nothing read or saved, nothing recorded (bench results verify)."""
    cfg = opts.train_config(unit.job.protocol_epochs, unit.arch)
    task = unit.task(opts.device)
    ev = Evaluation(runs=tuple(train_and_test(task, cfg, seed) for seed in opts.seeds), epochs=cfg.epochs)
    return result_of(unit.job.fields, unit.job.ipc, len(unit.job.labels), ev, cfg)


def grid_of(opts: Options, unit: Unit) -> tuple[Tensor, Tensor, int] | None:
    """The sample grid, written with the first architecture's row (not a curve point's)."""
    job = unit.job
    return (job.preview, job.labels, job.ds.info.num_classes) if _grid_unit(opts, unit) else None


def _grid_unit(opts: Options, unit: Unit) -> bool:
    return unit.arch == opts.archs[0] and curve_point(unit.job.fields) is None and unit.labels != "hard"


def leaks_of(opts: Options, unit: Unit) -> tuple[Tensor, Tensor] | None:
    """The matched (submitted, test) image pairs, written with the first architecture's row."""
    job = unit.job
    if not _grid_unit(opts, unit) or job.leak is None or not job.leak.matches:
        return None
    pairs = job.leak.matches
    return (job.preview[[m.image for m in pairs]], job.ds.test_images[[m.test_image for m in pairs]])
