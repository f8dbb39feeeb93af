"""Tracks: a command becomes a list of tasks, one per (team or reference, dataset); a task is
prepared into a Job (the images to score) or a Rejection (a status row), then scored.

Preparing and scoring are apart so that `benchmark.distributed` can prepare on every process
(generators on one process each) and spread the training runs; run alone, `execute` prepares and
scores one task after the other. Whatever goes wrong with one task ends as its own status row.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Callable, Union

from evaluator.errors import DatasetError, EvaluatorError
from evaluator.normalize import denormalize, to_uint8

from . import generation, sandbox, shards, teacher
from .console import info, warn
from .errors import SubmissionError, UsageError
from .options import Options
from .results import Status
from .scoring import Job, Outcome, describe, identity, previous_result, reject, score, standard_fields
from .submission import TEAM_PATTERN, TRACKS, Submission, combined_hash, discover, file_hashes, parse_spec, submission_folder
from .validate import check_fixed_ipc, check_soft_label


@dataclass(frozen=True)
class Rejection:
    """A status row to record (never a score)."""
    fields: dict
    status: Status
    reason: str


Prepared = Union[Job, Rejection, list]  # a list: the outcomes of evaluations already recorded (skipped)


@dataclass(frozen=True)
class Task:
    """One (team or reference, dataset) of a command."""
    name: str  # team/dataset
    identity: dict  # team, method, track, dataset, submission_sha256: the fields of a failure row
    prepare: Callable[[], Prepared]
    generates: bool = False  # runs a generator: once, on one process
    skip_unprepared: bool = False  # a dataset not prepared: warn and skip (bench run) rather than exit 2


def isolated(opts: Options, task: Task, step: Callable[[], list[Outcome] | Prepared]):
    """Run one step of a task. What a submission can cause — a refusal of its files or folder, a
    file it made unreadable — becomes the task's `failed` row; a harness set-up problem (bwrap
    missing, damaged results.csv, dataset not prepared) and any other exception, a fault of the
    harness itself, are raised (exit 2; bench logs the traceback), never blamed on the team."""
    try:
        return step()
    except (UsageError, DatasetError):
        raise
    except (SubmissionError, EvaluatorError, OSError) as exc:
        return Rejection(describe(opts, **task.identity), Status.FAILED,
                         f"could not be evaluated ({type(exc).__name__}: {exc})")


def record(opts: Options, prepared: Prepared) -> list[Outcome]:
    """The outcome of a prepared task that needs no training (a rejection, or all skipped)."""
    if isinstance(prepared, Rejection):
        return [reject(opts, prepared.fields, prepared.status, prepared.reason)]
    return list(prepared)


def execute(opts: Options, tasks: list[Task]) -> list[Outcome]:
    """Prepare and score the tasks one after the other, in this process."""
    outcomes: list[Outcome] = []
    for task in tasks:
        try:
            prepared = isolated(opts, task, task.prepare)
            result = isolated(opts, task, lambda: score(opts, prepared) if isinstance(prepared, Job) else prepared)
        except DatasetError as exc:
            if not task.skip_unprepared:
                raise
            warn(f"skipping {task.name}: {exc}")
            continue
        outcomes += result if isinstance(result, list) else record(opts, result)
    return outcomes


# -- the tracks ------------------------------------------------------------------------------------

def prepare_fixed_ipc(opts: Options, sub: Submission, sha: str, dataset: str) -> Job | Rejection:
    protocol = opts.protocol
    fields = describe(opts, protocol.fixed_epochs, team=sub.team, method=sub.method, track=sub.track,
                      dataset=dataset, submission_sha256=sha)
    try:
        image_set, check = check_fixed_ipc(sub, dataset, protocol)
    except SubmissionError as exc:
        return Rejection(fields, Status.INVALID, str(exc))
    for w in check.warnings:
        warn(w)
    return _fixed_job(opts, fields, image_set)


def _fixed_job(opts: Options, fields: dict, image_set) -> Job:
    protocol = opts.protocol
    ds = opts.dataset(fields["dataset"], need_train=protocol.leakage is not None)
    mean, std = ds.info.mean, ds.info.std
    uint8 = image_set.is_uint8
    preview = image_set.images if uint8 else to_uint8(image_set.images, mean, std)
    return Job(ds=ds, fields=fields, images=image_set.normalized(mean, std), labels=image_set.labels,
               preview=preview, ipc=protocol.fixed_ipc, protocol_epochs=protocol.fixed_epochs,
               pixels=None if uint8 else denormalize(image_set.images, mean, std))


def prepare_soft_label(opts: Options, sub: Submission, sha: str, dataset: str) -> Job | Rejection:
    """A fixed-IPC image set with soft labels: stored in its file, or the harness teacher's online
    (the teacher is trained here on first use). Scored twice: soft, and with its hard labels."""
    protocol = opts.protocol
    fields = describe(opts, protocol.fixed_epochs, team=sub.team, method=sub.method, track=sub.track,
                      dataset=dataset, submission_sha256=sha)
    try:
        image_set, check, soft = check_soft_label(sub, dataset, protocol)
    except SubmissionError as exc:
        return Rejection(fields, Status.INVALID, str(exc))
    for w in check.warnings:
        warn(w)
    job = _fixed_job(opts, fields, image_set)
    online = soft.mode == "online"
    return replace(job, soft=soft, teacher=teacher.obtain(opts, dataset, opts.teacher_arch) if online else None)


def prepare_generative(opts: Options, sub: Submission, sha: str, dataset: str) -> Prepared:
    """Run the generator in the sandbox against the clock; its completed images become the Job,
    and with the anytime curve, those complete by each fraction of the budget its points."""
    if opts.sandbox:
        sandbox.bwrap_binary()  # refuse before anything runs
    protocol = opts.protocol
    ds = opts.dataset(dataset, need_train=protocol.leakage is not None)
    budget = opts.budget(dataset)
    fields = describe(opts, None, generation=True, team=sub.team, method=sub.method, track=sub.track,
                      dataset=dataset, submission_sha256=sha, budget_seconds=budget,
                      sandbox="bwrap" if opts.sandbox else "none")
    curve = opts.anytime_fractions(dataset)
    previous = [previous_result(opts, identity(opts, fields, ds.test_digest, None, arch).digest(),
                                f"{sub.team}/{dataset}/{arch}") for arch in opts.archs]
    if all(previous):  # every result asked for exists (its curve is that generation's): no need to run again
        for outcome in previous:
            info(outcome.message)
        return previous
    info(f"{sub.team}/{dataset}: generating ({budget:g} s budget{'' if opts.sandbox else ', NO SANDBOX'}"
         f"{', calibrated clock' if opts.calibrated() else ''})")
    settings = generation.Settings(device=opts.device, seed=opts.seeds[0], budget=budget,
                                   limits=protocol.sandbox_limits, sandboxed=opts.sandbox)
    per_image = 3 * ds.info.resolution ** 2  # the fewest bytes a shard can store an image in
    max_images = protocol.sandbox_limits.max_output_bytes // per_image

    def consume(gen: generation.Generation) -> tuple:
        """The image set, and the curve's points: (fraction, images) of each new set that has any."""
        images = shards.collect(gen.shards, ds, protocol.max_ipc, max_images)
        points = ((f, _point(gen, f, ds, protocol.max_ipc, max_images)) for f in _new_sets(gen, curve))
        return images, tuple((f, p) for f, p in points if p is not None)

    try:
        with generation.device_lock(opts.device, f"{sub.team}/{dataset}"):
            if opts.calibrated():
                gen = generation.clocked(sub, ds, settings, protocol.clock, protocol.target(dataset), opts.wait, consume)
            else:
                gen = generation.generate(sub, ds, settings, consume)
    except SubmissionError as exc:  # entrypoint missing, files the sandbox cannot read
        return Rejection(fields, Status.INVALID, str(exc))
    fields.update(_clock_fields(opts, gen, dataset))
    problem = gen.problem(protocol.sandbox_limits)
    if problem is not None:
        return Rejection(fields, *problem)
    images, points = gen.collected
    if gen.timed_out:
        info(f"{sub.team}/{dataset}: stopped at the deadline; scoring the {len(gen.shards)} shards completed before it")
    if images.dropped:
        info(f"{sub.team}/{dataset}: IPC {images.ipc}; dropped {images.dropped} extra images of larger classes")
    fields.update(images_generated=images.generated, images_dropped=images.dropped,
                  anytime=1.0 if curve else None)  # 1: the main row of a curve (points: their fraction)
    job = _generated_job(ds, fields, images, protocol)
    return replace(job, points=tuple(_generated_job(ds, {**fields, "anytime": f, "gen_seconds": f * gen.budget,
                                                         "images_generated": p.generated, "images_dropped": p.dropped},
                                                    p, protocol)
                                     for f, p in points))


def _generated_job(ds, fields: dict, images: shards.GeneratedSet, protocol) -> Job:
    return Job(ds=ds, fields=fields, images=ds.normalize(images.images), labels=images.labels, preview=images.images,
               ipc=images.ipc, protocol_epochs=protocol.ipc_epochs.epochs(images.ipc))


def _new_sets(gen: generation.Generation, fractions: tuple[float, ...]) -> tuple[float, ...]:
    """The fractions of the budget at which the complete shards differ from those at the fraction
    before and from all of them (the main row), none being no point: a curve point is scored once
    per distinct set, at the earliest fraction that set existed."""
    out, previous = [], None
    for f in fractions:
        found = gen.shards_by(f * gen.budget)
        if found and found != previous and found != gen.shards:
            out.append(f)
        previous = found
    return tuple(out)


def _point(gen: generation.Generation, fraction: float, ds, max_ipc: int, max_images: int) -> shards.GeneratedSet | None:
    """The images complete by `fraction` of the budget (None: not yet one image of every class)."""
    found = gen.shards_by(fraction * gen.budget)
    try:
        return shards.collect(found, ds, max_ipc, max_images) if found else None
    except SubmissionError:  # a class without images yet: IPC 0 at this point
        return None


def _clock_fields(opts: Options, gen: generation.Generation, dataset: str) -> dict:
    """The generation's clock, as its rows record it; an unstable or clamped clock is a deviation."""
    reading = gen.reading
    fields = {"gen_seconds": gen.seconds, "budget_effective": gen.budget, "generation_id": uuid.uuid4().hex[:16],
              "clock": "wall" if opts.protocol.clock is not None else ""}
    if reading is not None:
        fields.update(clock=reading.state, device_score=reading.before.value, device_score_after=reading.after.value,
                      others_cpu=reading.foreign_share,
                      **standard_fields(opts, None, dataset, reading.state))
    return fields


PREPARERS = {"fixed-ipc": prepare_fixed_ipc, "generative": prepare_generative,  # one per name in TRACKS
             "soft-label": prepare_soft_label}
assert tuple(PREPARERS) == TRACKS


# -- from the command line to tasks ----------------------------------------------------------------

def submission_tasks(opts: Options, team: str, datasets: list[str] | None = None,
                     skip_unprepared: bool = False) -> list[Task]:
    """One task per dataset a team enters (or those asked for); a folder or submission.yaml that
    is invalid is one task that records why."""
    folder = submission_folder(opts.project, team)
    sha = ""
    try:
        sha = combined_hash(file_hashes(folder))
        sub = parse_spec(folder)
    except SubmissionError as exc:
        identity = dict(team=folder.name, method="", track="", dataset="", submission_sha256=sha)
        failure = Rejection(describe(opts, **identity), Status.INVALID, str(exc))
        return [Task(f"{team}/-", identity, lambda: failure)]
    return [Task(f"{sub.team}/{d}", dict(team=sub.team, method=sub.method, track=sub.track, dataset=d,
                                           submission_sha256=sha),
                 lambda d=d: PREPARERS[sub.track](opts, sub, sha, d), generates=sub.track == "generative",
                 skip_unprepared=skip_unprepared)
            for d in _select(sub, datasets)]


def _select(sub: Submission, datasets: list[str] | None) -> list[str]:
    if not datasets:
        return list(sub.datasets)
    missing = [d for d in datasets if d not in sub.datasets]
    if missing:
        raise UsageError(f"{sub.team} does not enter {', '.join(missing)} (its datasets: {', '.join(sub.datasets)})")
    return list(datasets)


def track_tasks(opts: Options, track: str, teams: list[str] | None, datasets: list[str] | None) -> list[Task]:
    """Every submission of a track (or the teams named), on the datasets each enters."""
    tasks: list[Task] = []
    for team in teams or discover(opts.project):
        if not teams and not TEAM_PATTERN.fullmatch(team):
            warn(f"skipping submissions/{team}: not a team name (letters, digits, '_', '-', '.'); rename the folder")
            continue
        folder = submission_folder(opts.project, team)
        try:
            file_hashes(folder)
            sub = parse_spec(folder)
        except SubmissionError:
            if teams:  # named explicitly: record why it cannot run
                tasks += submission_tasks(opts, team)
            else:
                warn(f"skipping submissions/{team}: its folder or submission.yaml is invalid (bench validate {team})")
            continue
        if sub.track != track:
            if teams:
                raise UsageError(f"{team} is a {sub.track} submission, not {track}")
            continue
        wanted = [d for d in sub.datasets if not datasets or d in datasets]
        if wanted:
            tasks += submission_tasks(opts, team, wanted, skip_unprepared=True)
    return tasks


def submit(opts: Options, team: str, datasets: list[str] | None = None) -> list[Outcome]:
    """Evaluate one team's submission on every dataset it enters (or those asked for)."""
    return execute(opts, submission_tasks(opts, team, datasets))
