"""bench results check | verify | keygen: is leaderboard/results.csv sound, signed, reproducible?"""
from __future__ import annotations

import argparse
from pathlib import Path

from .. import results, signing
from ..console import error, info, warn
from ..options import resolve_device
from ._common import add_root, project_root


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("results", help="check, verify or sign leaderboard/results.csv")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    p = verbs.add_parser("check", help="check the header, column count and every value; with a signing key, "
                                       "list every row whose signature does not verify")
    add_root(p)
    p.set_defaults(handler=cmd_check)
    p = verbs.add_parser("verify", help="re-run recorded evaluations from their rows and say whether they reproduce",
                         description="Re-run recorded evaluations (all, a team's, or one row) from what their rows "
                                     "record; the submission's files must still hash the same. Same device kind: "
                                     "identical accuracies; another device: within the row's 95 %% CI.")
    add_root(p)
    p.add_argument("--team", default=None, help="only this team's rows (or a reference row's name)")
    p.add_argument("--dataset", default=None, help="only rows of this dataset")
    p.add_argument("--line", type=int, default=None, metavar="N", help="only the row at line N of results.csv")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default auto)")
    p.set_defaults(handler=cmd_verify)
    p = verbs.add_parser("keygen", help="write a new organiser signing key (outside the project)")
    add_root(p)
    p.add_argument("--out", type=Path, default=None, metavar="FILE",
                   help=f"where to write it (default {signing.default_key_file()})")
    p.set_defaults(handler=cmd_keygen)


def cmd_check(args: argparse.Namespace) -> int:
    root = project_root(args)
    problems = results.check_results(root)
    for problem in problems:
        error(problem)
    if problems:
        return 2
    key = signing.load_key(root)
    rows = len(results.read_results(root))
    if key is None:
        info(f"{results.results_path(root)}: {rows} rows, all sound; unsigned (no organiser key configured: "
             f"set ${signing.ENV_FILE} to check signatures)")
        return 0
    bad = results.unverified(root, key)
    for line in bad:
        warn(line)
    if bad:
        error(f"{len(bad)} of {rows} rows do not verify with key {key.fingerprint}")
        return 1
    info(f"{results.results_path(root)}: {rows} rows, all sound, every one signed with key {key.fingerprint}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from ..verify import REPRODUCED, verify

    verdicts = verify(project_root(args), resolve_device(args.device), args.team, args.dataset, args.line)
    good = sum(v.outcome == REPRODUCED for v in verdicts)
    info(f"{good} of {len(verdicts)} rows reproduced")
    return 0 if good == len(verdicts) else 1


def cmd_keygen(args: argparse.Namespace) -> int:
    root = project_root(args)
    path = args.out or signing.default_key_file()
    key = signing.write_new_key(path, root)
    info(f"wrote a new signing key to {path} (fingerprint {key.fingerprint}; readable by you only). "
         f"Rows are signed with it when ${signing.ENV_FILE}={path} is set"
         f"{' or it stays at this default place' if path == signing.default_key_file() else ''}; keep it secret "
         f"and out of the repository")
    return 0
