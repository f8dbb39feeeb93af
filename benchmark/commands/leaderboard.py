"""bench leaderboard: regenerate LEADERBOARD.md from results.csv and print it."""
from __future__ import annotations

import argparse

from rich.table import Table as RichTable
from rich.text import Text

from .. import leaderboard, results
from ..console import console, info
from ..submission import current_hashes
from ._common import add_root, project_root


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("leaderboard", help="regenerate and print the leaderboard")
    add_root(p)
    p.set_defaults(handler=cmd_leaderboard)


def cmd_leaderboard(args: argparse.Namespace) -> int:
    root = project_root(args)
    hashes = current_hashes(root)  # before the lock: a slow folder never holds up the others' writes
    with results.locked(root):
        tables = leaderboard.write(root, hashes)  # errors here are the command's: exit 2
    path = root / "leaderboard" / "LEADERBOARD.md"
    for t in [*tables, leaderboard.published_table()]:
        if not t.rows:
            info(f"{t.title}: {t.note or 'empty'}")
            continue
        rich = RichTable(title=Text(t.title))
        for col in t.columns:
            rich.add_column(Text(col), overflow="fold")
        for row in t.rows:
            rich.add_row(*(Text(cell) for cell in row))  # plain text: never parsed as markup
        console.print(rich)
    info(f"wrote {path}")
    return 0
