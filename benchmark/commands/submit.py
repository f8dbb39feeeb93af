"""bench submit TEAM / bench run --track T: evaluate submissions and record the results."""
from __future__ import annotations

import argparse

from ..console import info
from ..submission import TRACKS
from ._common import add_common, options, run_tasks


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("submit", help="validate and evaluate one team's submission",
                       description="Evaluate submissions/TEAM on every dataset it enters (or --dataset), "
                                   "append the rows to leaderboard/results.csv and regenerate LEADERBOARD.md.")
    p.add_argument("team")
    p.add_argument("--dataset", action="append", default=None, metavar="D", help="only this dataset (repeatable)")
    add_common(p)
    p.set_defaults(handler=cmd_submit)

    p = sub.add_parser("run", help="evaluate every submission of a track",
                       description="Evaluate all submissions of a track (or --team), skipping identical "
                                   "evaluations already recorded.")
    p.add_argument("--track", required=True, choices=TRACKS)
    p.add_argument("--team", action="append", default=None, metavar="T", help="only this team (repeatable)")
    p.add_argument("--dataset", action="append", default=None, metavar="D", help="only this dataset (repeatable)")
    add_common(p)
    p.set_defaults(handler=cmd_run)


def cmd_submit(args: argparse.Namespace) -> int:
    from ..tracks import submission_tasks

    return run_tasks(options(args), lambda opts: submission_tasks(opts, args.team, args.dataset), args.json,
                     args.references)


def cmd_run(args: argparse.Namespace) -> int:
    from ..tracks import track_tasks

    def tasks(opts):
        found = track_tasks(opts, args.track, args.team, args.dataset)
        if not found:
            info(f"no {args.track} submissions to evaluate")
        return found

    return run_tasks(options(args), tasks, args.json, args.references)
