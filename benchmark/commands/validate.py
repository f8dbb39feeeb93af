"""bench validate TEAM: every check that needs no training."""
from __future__ import annotations

import argparse

from ..console import error, info, warn
from ..errors import SubmissionError
from ..protocol import load_protocol
from ..submission import file_hashes, parse_spec, submission_folder
from ._common import add_root, project_root


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check a submission without training",
                       description="Schema, files, shapes, dtype, finite values, class count and balance, "
                                   "resolution, label range, normalisation sanity; lists the sha256 of every file.")
    p.add_argument("team")
    add_root(p)
    p.set_defaults(handler=cmd_validate)


def cmd_validate(args: argparse.Namespace) -> int:
    from ..validate import validate_submission

    root = project_root(args)
    folder = submission_folder(root, args.team)
    for name, digest in file_hashes(folder).items():
        info(f"  sha256 {digest}  {name}")
    try:
        sub = parse_spec(folder)
    except SubmissionError as exc:
        error(str(exc))
        return 1
    info(f"{sub.team}: {sub.track} submission, method '{sub.method}', datasets {', '.join(sub.datasets)}")
    ok = True
    for check in validate_submission(sub, sub.datasets, load_protocol()):
        if check.error:
            ok = False
            error(check.error)
            continue
        for w in check.warnings:
            warn(w)
        if check.file is not None:
            labels = f", soft labels {check.labels}" if check.labels else ""
            info(f"ok {check.dataset}: {check.file.name}, {check.images} images, IPC {check.ipc}{labels}", style="green")
        else:
            info(f"{check.dataset}: generator checked when it runs (bench submit {sub.team})")
    return 0 if ok else 1
