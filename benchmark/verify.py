"""Re-running a recorded evaluation from what its row records, and saying whether it reproduces.

From a row: the protocol version, the seeds, the precision, the departures named in `nonstandard`
(epochs, budget, sandbox, preset), the architecture, the team and dataset. The submission's files
must still hash to the row's `submission_sha256` (a reference row's images are selected again and
must hash the same), and the evaluation rebuilt from these must have the row's `protocol_key`.
Then every run is trained afresh (saved runs are not reused, nothing is recorded) and compared:
on the same kind of device, the per-run accuracies must be identical; elsewhere the new mean must
lie within the row's 95 % confidence interval. A generator runs again against its clock, so a
generative row reproduces only as far as its generator does.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from evaluator.stats import Estimate

from . import results
from .baseline import baseline_tasks
from .console import error, info
from .errors import UsageError
from .options import Options, Overrides, device_name
from .protocol import load_protocol, released_versions
from .results import Result, Row, Status
from .scoring import Job, check_job, fresh_evaluation, units
from .tracks import Rejection, submission_tasks

REPRODUCED, DIFFERS, CANNOT = "reproduced", "differs", "cannot verify"
REFERENCE_KINDS = {"Full dataset": "full"}  # and "Random <IPC> IPC": random


@dataclass(frozen=True)
class Verdict:
    row: Row
    outcome: str  # REPRODUCED | DIFFERS | CANNOT
    message: str


class _Cannot(Exception):
    pass


def _deviations(r: Result) -> dict[str, str]:
    """The row's named departures: {'epochs': '5', 'preset': 'quick', 'no-sandbox': ''}."""
    return dict(t.split("=", 1) if "=" in t else (t, "") for t in r.nonstandard.split())


def options_of(r: Result, root: Path, device: str) -> Options:
    """The options the row was evaluated under."""
    if not r.protocol_version.isdigit() or int(r.protocol_version) not in released_versions():
        raise _Cannot(f"made under protocol '{r.protocol_version}', not a released version this harness loads")
    protocol = load_protocol(int(r.protocol_version))
    named = _deviations(r)
    try:
        overrides = Overrides(runs=len(r.seeds), seed=r.seeds[0] if r.seeds else None,
                              precision=r.precision or None,
                              epochs=int(named["epochs"]) if "epochs" in named else None,
                              budget=r.budget_seconds if "budget" in named else None,
                              sandbox="no-sandbox" not in named, preset=named.get("preset"),
                              teacher_arch=named.get("teacher"))
        return Options(protocol=protocol, overrides=overrides, root=root, device=device, compile=None,
                       arch_names=(r.arch,) if r.arch else ())
    except (UsageError, ValueError) as exc:
        raise _Cannot(f"its options cannot be rebuilt ({exc})") from None


def _job(opts: Options, r: Result) -> Job:
    """The image set the row scored, prepared again (a generator runs again)."""
    if r.track == "reference":
        kind = REFERENCE_KINDS.get(r.team, "random" if r.team.startswith("Random ") else None)
        if kind is None:
            raise _Cannot(f"unknown reference row '{r.team}'")
        tasks = baseline_tasks(opts, kind, [r.dataset], r.ipc if kind == "random" and r.ipc else None)
    else:
        try:
            tasks = submission_tasks(opts, r.team, [r.dataset])
        except UsageError as exc:
            raise _Cannot(str(exc)) from None
    prepared = tasks[0].prepare()
    if isinstance(prepared, Rejection):
        raise _Cannot(f"the submission is now {prepared.status.value}: {prepared.reason}")
    if not isinstance(prepared, Job):
        raise _Cannot("nothing was prepared to train")
    if prepared.fields.get("submission_sha256") != r.submission_sha256:
        raise _Cannot("the submission's files no longer hash to the row's submission_sha256 (they changed)")
    return prepared


def verify_row(row: Row, root: Path, device: str) -> Verdict:
    r = row.result
    try:
        if r.status is not Status.OK:
            raise _Cannot(f"a {r.status.value} row has no score to reproduce")
        if row.verified is False:
            raise _Cannot("its signature does not verify with the organisers' key (bench results check says why); "
                          "an unverified row is not evidence of anything")
        opts = replace(options_of(r, root, device), force=True)  # never skipped as already evaluated
        job = check_job(opts.protocol, _job(opts, r), device)
        unit = next((u for u in units(opts, job) if u.key == r.protocol_key), None)
        if unit is None:
            raise _Cannot("the evaluation rebuilt from the row has another identity (protocol_key): the row does "
                          "not describe how it was made, or the data set changed")
        again = fresh_evaluation(opts, unit)
    except _Cannot as exc:
        return Verdict(row, CANNOT, str(exc))
    return _compare(row, again, device_name(device))


def _compare(row: Row, again: Result, device: str) -> Verdict:
    r = row.result
    new = Estimate.of(list(again.acc_runs))
    runs = ", ".join(f"{a:.2f}" for a in again.acc_runs)
    said = f"recorded {r.acc_mean:.2f}, now {new.mean:.2f} (runs {runs})"
    if again.leaked != r.leaked:
        return Verdict(row, DIFFERS, f"{said}; leakage check: {again.leaked} images matched, the row says {r.leaked}")
    if again.ipc != r.ipc:
        return Verdict(row, DIFFERS, f"{said}; IPC {again.ipc}, the row says {r.ipc}")
    if device == r.device:
        same = tuple(round(a, 4) for a in again.acc_runs) == tuple(round(a, 4) for a in r.acc_runs)
        return Verdict(row, REPRODUCED if same else DIFFERS,
                       f"{said}; same device: {'every run identical' if same else 'the runs differ'}")
    ci = Estimate.of(list(r.acc_runs)).ci95  # from the recorded runs themselves, not the row's acc_ci95 cell
    if ci is None:
        return Verdict(row, CANNOT, f"{said}; another device ({device}) and no confidence interval to compare within")
    inside = abs(new.mean - r.acc_mean) <= ci
    return Verdict(row, REPRODUCED if inside else DIFFERS,
                   f"{said}; another device ({device}): {'within' if inside else 'outside'} the row's 95 % CI ± {ci:.2f}")


def select(rows: list[Row], team: str | None, dataset: str | None, line: int | None) -> list[Row]:
    """The rows asked for: one line, or the successful rows (of a team, of a dataset), the latest
    of each evaluation (protocol_key)."""
    if line is not None:
        picked = [row for row in rows if row.line == line]
        if not picked:
            raise UsageError(f"results.csv has no row at line {line}; bench results check lists the rows")
        return picked
    latest: dict[str, Row] = {}
    for row in rows:
        r = row.result
        if r.status is Status.OK and (team is None or r.team == team) and (dataset is None or r.dataset == dataset):
            latest[r.protocol_key] = row
    return list(latest.values())


def verify(root: Path, device: str, team: str | None = None, dataset: str | None = None,
           line: int | None = None) -> list[Verdict]:
    from . import signing

    chosen = select(results.read_rows(root, signing.load_key(root)), team, dataset, line)
    if not chosen:
        info("no successful row matches; nothing to verify")
    verdicts = []
    for row in chosen:
        r = row.result
        info(f"{row.where}: re-running {r.team}/{r.dataset}/{r.arch or '-'} ({len(r.seeds)} runs)")
        verdict = verify_row(row, root, device)
        (info if verdict.outcome == REPRODUCED else error)(f"{row.where}: {verdict.outcome}: {verdict.message}")
        verdicts.append(verdict)
    return verdicts
