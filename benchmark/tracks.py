"""Tracks: turning a submission folder into scored rows (`submit`) and running a whole track."""
from __future__ import annotations

from pathlib import Path

from evaluator.data import load_dataset
from evaluator.errors import DatasetError
from evaluator.normalize import to_uint8

from . import generation, sandbox, shards
from .console import info, warn
from .errors import SubmissionError, UsageError
from .options import Options
from .results import Status
from .scoring import Job, Outcome, describe, previous_result, protocol_key, reject, score, standard_fields
from .submission import TEAM_PATTERN, TRACKS, Submission, combined_hash, discover, file_hashes, parse_spec, submission_folder
from .validate import check_fixed_ipc


def submit(opts: Options, team: str, datasets: list[str] | None = None) -> list[Outcome]:
    """Evaluate one team's submission on every dataset it enters (or those asked for). Whatever
    goes wrong with one dataset ends as that team's status row; the next dataset still runs."""
    folder = submission_folder(opts.project, team)
    sha = ""
    try:
        sha = combined_hash(file_hashes(folder))
        sub = parse_spec(folder)
    except SubmissionError as exc:
        fields = describe(opts, team=folder.name, method="", track="", dataset="", submission_sha256=sha)
        return [reject(opts, fields, Status.INVALID, str(exc))]
    return [_isolated(opts, sub, sha, d) for d in _select(sub, datasets)]


def _isolated(opts: Options, sub: Submission, sha: str, dataset: str) -> Outcome:
    """One (team, dataset): a harness set-up problem (bwrap missing, dataset not prepared, damaged
    results.csv) is raised; anything else a submission causes becomes its `failed` row."""
    try:
        return RUNNERS[sub.track](opts, sub, sha, dataset)
    except (UsageError, DatasetError):
        raise
    except Exception as exc:  # noqa: BLE001 — a hostile submission may raise anything
        fields = describe(opts, team=sub.team, method=sub.method, track=sub.track, dataset=dataset,
                          submission_sha256=sha)
        return reject(opts, fields, Status.FAILED, f"could not be evaluated ({type(exc).__name__}: {exc})")


def _select(sub: Submission, datasets: list[str] | None) -> list[str]:
    if not datasets:
        return list(sub.datasets)
    missing = [d for d in datasets if d not in sub.datasets]
    if missing:
        raise UsageError(f"{sub.team} does not enter {', '.join(missing)} (its datasets: {', '.join(sub.datasets)})")
    return list(datasets)


def _fixed_ipc(opts: Options, sub: Submission, sha: str, dataset: str) -> Outcome:
    protocol = opts.protocol
    fields = describe(opts, protocol.fixed_epochs, team=sub.team, method=sub.method, track=sub.track,
                      dataset=dataset, submission_sha256=sha)
    try:
        image_set, check = check_fixed_ipc(sub, dataset, protocol)
    except SubmissionError as exc:
        return reject(opts, fields, Status.INVALID, str(exc))
    for w in check.warnings:
        warn(w)
    ds = load_dataset(dataset, opts.data_dir)
    mean, std = ds.info.mean, ds.info.std
    preview = image_set.images if image_set.is_uint8 else to_uint8(image_set.images, mean, std)
    job = Job(fields=fields, images=image_set.normalized(mean, std), labels=image_set.labels, preview=preview,
              ipc=protocol.fixed_ipc, protocol_epochs=protocol.fixed_epochs)
    return score(opts, ds, job)


def _generative(opts: Options, sub: Submission, sha: str, dataset: str) -> Outcome:
    """Run the generator in the sandbox against the clock, then score the images it completed."""
    if opts.sandbox:
        sandbox.bwrap_binary()  # refuse before anything runs
    protocol = opts.protocol
    ds = load_dataset(dataset, opts.data_dir)
    budget = opts.budget(dataset)
    fields = describe(opts, None, generation=True, team=sub.team, method=sub.method, track=sub.track,
                      dataset=dataset, submission_sha256=sha, budget_seconds=budget,
                      sandbox="bwrap" if opts.sandbox else "none")
    key_fields = {"budget": budget, "sandbox": opts.sandbox}
    previous = previous_result(opts, protocol_key(opts, ds, fields, key_fields), sub.team, dataset)
    if previous is not None:
        return previous
    info(f"{sub.team}/{dataset}: generating ({budget:g} s budget{'' if opts.sandbox else ', NO SANDBOX'})")
    with sandbox.temp_folder() as workdir:
        try:
            gen = generation.generate(sub, ds, generation.Settings(device=opts.device, seed=opts.seeds[0],
                                                                   budget=budget, limits=protocol.sandbox_limits,
                                                                   sandboxed=opts.sandbox), Path(workdir))
        except SubmissionError as exc:  # entrypoint missing, files the sandbox cannot read
            return reject(opts, fields, Status.INVALID, str(exc))
        fields["gen_seconds"] = gen.seconds
        problem = gen.problem(budget, protocol.sandbox_limits)
        if problem is not None:
            return reject(opts, fields, *problem)
        try:
            per_image = 3 * ds.info.resolution ** 2  # the fewest bytes a shard can store an image in
            images = shards.collect(gen.shards, ds, protocol.max_ipc, protocol.sandbox_limits.max_output_bytes // per_image)
        except SubmissionError as exc:
            return reject(opts, fields, Status.INVALID, str(exc))
    if gen.timed_out:
        info(f"{sub.team}/{dataset}: stopped at the deadline; scoring the {len(gen.shards)} shards completed before it")
    if images.dropped:
        info(f"{sub.team}/{dataset}: IPC {images.ipc}; dropped {images.dropped} extra images of larger classes")
    epochs = protocol.ipc_epochs.epochs(images.ipc)
    fields.update(images_generated=images.generated, images_dropped=images.dropped,
                  **standard_fields(opts, epochs, dataset))
    job = Job(fields=fields, images=ds.normalize(images.images), labels=images.labels, preview=images.images,
              ipc=images.ipc, protocol_epochs=epochs, key_fields=key_fields)
    return score(opts, ds, job)


RUNNERS = {"fixed-ipc": _fixed_ipc, "generative": _generative}  # one per name in submission.TRACKS
assert tuple(RUNNERS) == TRACKS


def run_track(opts: Options, track: str, teams: list[str] | None, datasets: list[str] | None) -> list[Outcome]:
    """Every submission of a track (or the teams named), on the datasets each enters."""
    outcomes: list[Outcome] = []
    for team in teams or discover(opts.project):
        if not teams and not TEAM_PATTERN.match(team):
            warn(f"skipping submissions/{team}: not a team name (letters, digits, '_', '-', '.'); rename the folder")
            continue
        folder = submission_folder(opts.project, team)
        try:
            file_hashes(folder)
            sub = parse_spec(folder)
        except SubmissionError:
            if teams:  # named explicitly: record why it cannot run
                outcomes += submit(opts, team)
            else:
                warn(f"skipping submissions/{team}: its folder or submission.yaml is invalid (bench validate {team})")
            continue
        if sub.track != track:
            if teams:
                raise UsageError(f"{team} is a {sub.track} submission, not {track}")
            continue
        for d in [d for d in sub.datasets if not datasets or d in datasets]:
            try:
                outcomes += submit(opts, team, [d])
            except DatasetError as exc:
                warn(f"skipping {team}/{d}: {exc}")
    return outcomes
