"""Tracks: turning a submission folder into scored rows (`submit`) and running a whole track."""
from __future__ import annotations

from evaluator.data import load_dataset
from evaluator.errors import DatasetError
from evaluator.normalize import to_uint8

from .config import Options
from .console import error, warn
from .errors import SubmissionError, UsageError
from .protocol import Protocol
from .runner import Job, Outcome, base_row, record_status, report_warnings, score
from .submission import Submission, combined_hash, discover, file_hashes, parse_spec, submission_folder
from .validate import check_fixed_ipc


def submit(opts: Options, protocol: Protocol, team: str, datasets: list[str] | None = None) -> list[Outcome]:
    """Evaluate one team's submission on every dataset it enters (or those asked for)."""
    root = opts.project
    folder = submission_folder(root, team)
    sha = combined_hash(file_hashes(folder))
    try:
        sub = parse_spec(folder)
    except SubmissionError as exc:
        row = base_row(opts, protocol, team=folder.name, method="", track="", dataset="", submission_sha256=sha)
        outcome = record_status(root, row, "invalid", str(exc))
        error(outcome.message)
        return [outcome]
    wanted = _select(sub, datasets)
    if sub.track == "generative":
        raise UsageError(f"{team}: the generative track is not available in this version of the harness")
    return [_fixed_ipc(opts, protocol, sub, sha, d) for d in wanted]


def _select(sub: Submission, datasets: list[str] | None) -> list[str]:
    if not datasets:
        return list(sub.datasets)
    missing = [d for d in datasets if d not in sub.datasets]
    if missing:
        raise UsageError(f"{sub.team} does not enter {', '.join(missing)} (its datasets: {', '.join(sub.datasets)})")
    return list(datasets)


def _fixed_ipc(opts: Options, protocol: Protocol, sub: Submission, sha: str, dataset: str) -> Outcome:
    row = base_row(opts, protocol, team=sub.team, method=sub.method, track=sub.track, dataset=dataset,
                   submission_sha256=sha)
    try:
        image_set, check = check_fixed_ipc(sub, dataset, protocol)
    except SubmissionError as exc:
        outcome = record_status(opts.project, row, "invalid", str(exc))
        error(outcome.message)
        return outcome
    report_warnings(check.warnings)
    ds = load_dataset(dataset, opts.data_dir)
    mean, std = ds.info.mean, ds.info.std
    preview = image_set.images if image_set.is_uint8 else to_uint8(image_set.images, mean, std)
    job = Job(row=row, images=image_set.normalized(mean, std), labels=image_set.labels, preview=preview,
              ipc=protocol.fixed_ipc, epochs=protocol.fixed_epochs)
    return score(opts, protocol, ds, job)


def run_track(opts: Options, protocol: Protocol, track: str, teams: list[str] | None,
              datasets: list[str] | None) -> list[Outcome]:
    """Every submission of a track (or the teams named), on the datasets each enters."""
    root = opts.project
    outcomes: list[Outcome] = []
    for team in teams or discover(root):
        folder = submission_folder(root, team)
        try:
            sub = parse_spec(folder)
        except SubmissionError:
            if teams:  # named explicitly: record why it cannot run
                outcomes += submit(opts, protocol, team)
            else:
                warn(f"skipping submissions/{team}: its submission.yaml is invalid (bench validate {team})")
            continue
        if sub.track != track:
            if teams:
                raise UsageError(f"{team} is a {sub.track} submission, not {track}")
            continue
        wanted = [d for d in sub.datasets if not datasets or d in datasets]
        for d in wanted:
            try:
                outcomes += submit(opts, protocol, team, [d])
            except DatasetError as exc:
                warn(f"skipping {team}/{d}: {exc}")
    return outcomes
