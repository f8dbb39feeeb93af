"""bench results check: is leaderboard/results.csv sound? Every problem, with its line."""
from __future__ import annotations

import argparse

from .. import results
from ..console import error, info
from ._common import add_root, project_root


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("results", help="inspect leaderboard/results.csv")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    p = verbs.add_parser("check", help="check the header, column count and every value; list each problem")
    add_root(p)
    p.set_defaults(handler=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    root = project_root(args)
    problems = results.check_results(root)
    for problem in problems:
        error(problem)
    if problems:
        return 2
    info(f"{results.results_path(root)}: {len(results.read_results(root))} rows, all sound")
    return 0
