"""bench leaderboard: regenerate LEADERBOARD.md from results.csv and print it."""
from __future__ import annotations

import argparse

from rich.table import Table as RichTable
from rich.text import Text

from ..console import console, info
from ._common import add_root, project_root


# Shown only with --wide on the terminal (LEADERBOARD.md has them all): the tables fit 80 columns.
DETAIL = {"method", "runs", "precision", "epochs", "gen time", "class spread", "date", "device", "samples", "pairs",
          "differs by", "arch", "line", "image bytes", "teacher", "teacher FLOPs"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("leaderboard", help="regenerate and print the leaderboard")
    add_root(p)
    p.add_argument("--wide", action="store_true", help="print every column (default: those that fit 80 columns)")
    p.set_defaults(handler=cmd_leaderboard)


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from .. import leaderboard, results
    from ..submission import current_hashes

    root = project_root(args)
    hashes = current_hashes(root)  # before the lock: a slow folder never holds up the others' writes
    with results.locked(root):
        tables = leaderboard.write(root, hashes)  # errors here are the command's: exit 2
    path = root / "leaderboard" / "LEADERBOARD.md"
    for t in [*tables, leaderboard.published_table()]:
        if not t.rows:
            info(f"{t.title}: {t.note or 'empty'}")
            continue
        keep = [i for i, col in enumerate(t.columns) if args.wide or col not in DETAIL]
        rich = RichTable(title=Text(t.title))
        for i in keep:
            rich.add_column(Text(t.columns[i]), overflow="fold")
        for row in t.rows:
            rich.add_row(*(Text(str(row[i])) for i in keep))  # plain text: never parsed as markup
        console.print(rich)
    info(f"wrote {path}")
    return 0
