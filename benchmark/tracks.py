"""Tracks: turning a submission folder into scored rows (`submit`) and running a whole track."""
from __future__ import annotations

import tempfile
from pathlib import Path

from evaluator.data import load_dataset
from evaluator.errors import DatasetError
from evaluator.normalize import to_uint8

from . import generation, sandbox
from .options import Options
from .console import error, info, warn
from .errors import SubmissionError, UsageError
from .protocol import Protocol
from .scoring import Job, Outcome, base_row, previous_result, protocol_key, record_status, score
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
    track = _generative if sub.track == "generative" else _fixed_ipc
    return [track(opts, protocol, sub, sha, d) for d in _select(sub, datasets)]


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
        return _reject(opts, row, "invalid", str(exc))
    for w in check.warnings:
        warn(w)
    ds = load_dataset(dataset, opts.data_dir)
    mean, std = ds.info.mean, ds.info.std
    preview = image_set.images if image_set.is_uint8 else to_uint8(image_set.images, mean, std)
    job = Job(row=row, images=image_set.normalized(mean, std), labels=image_set.labels, preview=preview,
              ipc=protocol.fixed_ipc, epochs=protocol.fixed_epochs)
    return score(opts, protocol, ds, job)


def _generative(opts: Options, protocol: Protocol, sub: Submission, sha: str, dataset: str) -> Outcome:
    """Run the generator in the sandbox against the clock, then score the images it completed."""
    if opts.sandbox:
        sandbox.bwrap_binary()  # refuse before anything runs
    ds = load_dataset(dataset, opts.data_dir)
    budget = opts.budget if opts.budget is not None else protocol.budget(dataset)
    row = base_row(opts, protocol, team=sub.team, method=sub.method, track=sub.track, dataset=dataset,
                   submission_sha256=sha, budget_seconds=budget, sandbox="bwrap" if opts.sandbox else "none")
    key_fields = {"budget": budget, "sandbox": opts.sandbox}
    previous = previous_result(opts, protocol_key(opts, protocol, ds, row, key_fields), sub.team, dataset)
    if previous is not None:
        return previous
    info(f"{sub.team}/{dataset}: generating ({budget:g} s budget{'' if opts.sandbox else ', NO SANDBOX'})")
    with tempfile.TemporaryDirectory(prefix="ddbench-gen-") as workdir:
        try:
            gen = generation.generate(sub, ds, opts.device, opts.seed, budget, Path(workdir),
                                      protocol.sandbox_limits, sandboxed=opts.sandbox)
        except SubmissionError as exc:  # entrypoint missing, files the sandbox cannot read
            return _reject(opts, row, "invalid", str(exc))
        row.update(gen_seconds=gen.seconds)
        if gen.output_exceeded:
            return _reject(opts, row, "failed", f"output folder exceeded the cap of "
                                                f"{protocol.sandbox_limits.max_output_bytes >> 20} MiB; stopped")
        if gen.crashed:
            return _reject(opts, row, "failed", f"generator exited with status {gen.returncode}: "
                                                f"{gen.log_tail or 'no output'}")
        if not gen.shards:
            if gen.timed_out:
                return _reject(opts, row, "timeout", f"no shard completed within the {budget:g} s budget")
            return _reject(opts, row, "failed", "the generator exited without completing a shard "
                                                "(shard-00000.safetensors, ... in --out)")
        try:
            images = generation.collect(gen.shards, ds, protocol.max_ipc)
        except SubmissionError as exc:
            return _reject(opts, row, "invalid", str(exc))
    if gen.timed_out:
        info(f"{sub.team}/{dataset}: stopped at the deadline; scoring the {len(gen.shards)} shards completed before it")
    row.update(images_generated=images.generated, images_dropped=images.dropped)
    if images.dropped:
        info(f"{sub.team}/{dataset}: IPC {images.ipc}; dropped {images.dropped} extra images of larger classes")
    job = Job(row=row, images=ds.normalize(images.images), labels=images.labels, preview=images.images,
              ipc=images.ipc, epochs=protocol.ipc_epochs.epochs(images.ipc), key_fields=key_fields)
    return score(opts, protocol, ds, job)


def _reject(opts: Options, row: dict, status: str, reason: str) -> Outcome:
    outcome = record_status(opts.project, row, status, reason)
    error(f"{row['team']}/{row['dataset']}: {outcome.message}")
    return outcome


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
