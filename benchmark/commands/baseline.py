"""bench baseline random|full --dataset D: the reference rows."""
from __future__ import annotations

import argparse

from ._common import add_common, options, run_tasks


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("baseline", help="reference rows: random IPC-10 real images, or the full training set",
                       description="random: a seeded random selection of real training images at the fixed-IPC "
                                   "track's IPC (also written to submissions/random_ipc10/ with the protocol's "
                                   "first seed); full: the whole training set, epochs from the IPC-epoch rule.")
    p.add_argument("kind", choices=("random", "full"))
    p.add_argument("--dataset", action="append", required=True, metavar="D", help="dataset (repeatable)")
    p.add_argument("--ipc", type=int, default=None, metavar="N",
                   help="random: images per class (default the fixed-IPC track's; another IPC trains the IPC-epoch "
                        "rule's epochs, the reference of a generator that made N per class)")
    add_common(p)
    p.set_defaults(handler=cmd_baseline)


def cmd_baseline(args: argparse.Namespace) -> int:
    from ..baseline import baseline_tasks

    opts = options(args)
    if args.ipc is not None and args.kind != "random":
        from ..errors import UsageError

        raise UsageError("--ipc is for bench baseline random (the full set has its own IPC)")
    return run_tasks(opts, lambda o: baseline_tasks(o, args.kind, args.dataset, args.ipc), args.json,
                     references=False)
