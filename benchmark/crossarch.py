"""Cross-architecture tables: does the image set teach networks it was not distilled for?

Per dataset, one row per team and reference (standard results of its current files), one column
per architecture, and the mean over the unseen architectures of the protocol's cross set (GLaD's
summary), shown only where all of them were evaluated. Beside the ranked challenge tables, never
inside them: the challenge's score stays the ConvNet's.
"""
from __future__ import annotations

import pandas as pd

from .protocol import load_protocol
from .tables import Table, dataset_order, score_cell


def cross_arch_tables(pool: pd.DataFrame, challenge: str) -> list[Table]:
    """pool: the latest standard row per (track, team, dataset, arch) of current files."""
    if not (pool["arch"] != challenge).any():
        return []
    cross = load_protocol().cross_archs
    tables = []
    for dataset in dataset_order(pool["dataset"]):
        mine = pool[pool["dataset"] == dataset]
        others = sorted(set(mine["arch"]) - {challenge, *cross})
        columns = [a for a in (challenge, *cross, *others) if a in set(mine["arch"])]
        table = Table(f"Cross-architecture: {dataset} (not ranked)",
                      ["track", "team", *columns, "mean unseen"],
                      note=f"Test accuracy (%) of each network trained on the same images with the challenge's "
                           f"recipe; mean unseen = mean over {', '.join(cross)} (shown once all are evaluated). "
                           f"Images distilled through {challenge} may not teach the others as well.")
        for (track, team), rows in mine.groupby(["track", "team"], sort=False):
            by_arch = rows.set_index("arch")
            cells = [score_cell(by_arch.loc[a]) if a in by_arch.index else "—" for a in columns]
            unseen = [float(by_arch.loc[a, "acc_mean"]) for a in cross if a in by_arch.index]
            mean = f"{sum(unseen) / len(unseen):.2f}" if len(unseen) == len(cross) else "—"
            table.rows.append([track, team, *cells, mean])
        tables.append(table)
    return tables
