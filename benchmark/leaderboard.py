"""leaderboard/LEADERBOARD.md: generated from results.csv after every change, never by hand.

Ranked, per track: only standard rows of the current protocol version, and of each team only the
evaluation of its current submission files (their content hash), the latest per dataset; never a
row the leakage check flagged, nor (with an organiser's key) a row whose signature does not
verify. Each score shows its run count, precision, sample std and 95 % confidence interval, and
how it reads against the reference rows (improvement over random images at its IPC, recovery of
the full-data score, each with its interval); neighbours whose difference is not significant are
marked as tied; a generator's row shows its clock (seconds given, device scores). The soft-label
division is ranked in its own table, each row beside the hard-label score of the same images and
what its labels cost. Apart and unranked: reference rows, generators' anytime
curves (a chart each), flagged rows with their matched image pairs, unverified rows, non-standard
rows and rows of older protocol versions, the latest rejections and failures, and the published
ECCV 2024 results.
Every text a team controls is escaped for Markdown and HTML.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd
import yaml

from evaluator.atomic import atomic_write_text
from evaluator.registry import CHALLENGE_DATASETS, REGISTRY
from evaluator.stats import Estimate

from . import grids, results, signing
from .console import error
from .crossarch import cross_arch_tables
from .curves import curve_table
from .submission import current_hashes
from .protocol import current_version, load_protocol
from .tables import Table, dataset_order, estimate, frame, joined, latest, present, score_cell
from .text import markdown_cell

TRACK_TITLES = {"fixed-ipc": "Track 1: fixed IPC", "generative": "Track 2: generative",
                "soft-label": "Soft-label division (fixed IPC, ranked apart)"}
PUBLISHED = Path(__file__).parent / "published_eccv2024.yaml"
TIE = "="  # after a rank: not significantly different from the entry above


def _ranked_entries(df: pd.DataFrame, datasets: list[str]) -> list[tuple[tuple, Estimate, str, pd.DataFrame]]:
    """(sort key, estimate, team, its rows) per team, best first. A team with every challenge
    dataset is ranked by the overall score, before teams ranked by their mean over what they entered."""
    entries = []
    for team, mine in df.groupby("team", sort=False):
        mine = mine.set_index("dataset")
        full = all(d in mine.index for d in CHALLENGE_DATASETS)
        used = list(CHALLENGE_DATASETS) if full else [d for d in datasets if d in mine.index]
        est = Estimate.average(estimate(mine.loc[d]) for d in used)
        entries.append(((full, tuple(used) if not full else (), est.mean), est, team, mine))
    entries.sort(key=lambda e: (e[0][0], e[0][2]), reverse=True)
    return entries


def _ranks(entries) -> list[str]:
    """1, 2, 2=, 4 …: a neighbour not significantly different shares the rank above, marked."""
    out, rank = [], 0
    for i, (key, est, _, _) in enumerate(entries):
        prev = entries[i - 1] if i else None
        tied = prev is not None and prev[0][:2] == key[:2] and not prev[1].differs(est)
        if not tied:
            rank = i + 1
        out.append(f"{rank}{TIE if tied else ''}")
    return out


def _track_table(title: str, df: pd.DataFrame, generative: bool, refs: pd.DataFrame) -> Table:
    datasets = dataset_order(df["dataset"])
    challenge = any(d in CHALLENGE_DATASETS for d in datasets)
    columns = ["#", "team", "method", *datasets, *(["overall"] if challenge else []), *VERSUS, "runs", "precision",
               "IPC", "epochs", *(["gen time", "clock"] if generative else []), "class spread", "date", "device",
               "samples"]
    table = Table(title, columns, trusted=("samples",))
    entries = _ranked_entries(df, datasets)
    for rank, (key, est, team, mine) in zip(_ranks(entries), entries):
        used = mine.loc[[d for d in datasets if d in mine.index]]
        cells = [rank, team, used["method"].iloc[-1]]
        cells += [score_cell(mine.loc[d]) if d in mine.index else "—" for d in datasets]
        if challenge:
            ci = est.ci95
            cells.append(f"{est.mean:.2f}" + (f" ({est.mean - ci:.2f}–{est.mean + ci:.2f})" if ci else "") if key[0] else "—")
        cells += versus_cells(used, refs, len(datasets) > 1)
        cells += [joined(used["runs"]), joined(used["precision"]), joined(used["ipc"]), joined(used["epochs"])]
        if generative:
            cells.append(joined(f"{s:.0f} s" for s in used["gen_seconds"] if present(s)))
            cells.append(joined(clock_cell(r) for _, r in used.iterrows()))
        cells += [joined(f"{s:.1f}" for s in used["class_spread"] if present(s)), max(used["timestamp"])[:10],
                  joined(used["device"])]
        cells.append(" ".join(f"[{d}](grids/{grids.grid_name(team, d)})" for d in used.index))
        table.rows.append(cells)
    table.note = ("Ranked by overall (mean over CIFAR-100 and Tiny-ImageNet) where a team entered both, else by "
                  "its mean over the datasets it entered. Scores: mean ± sample std over runs (95 % confidence "
                  f"interval of the mean). `{TIE}` after a rank: not significantly different from the entry above "
                  "(Welch's t-test, 5 %), so the order between them is noise. " + VERSUS_NOTE)
    return table


VERSUS = ("over random", "recovery")
VERSUS_NOTE = ("*over random*: the score less that of random real training images at the same IPC (reference rows, "
               "same protocol and network), in points; *recovery*: the score as a share of the whole training set's. "
               "Both with their 95 % confidence interval (docs/PROTOCOL.md, \"Reading a score\"); — : that reference "
               "row is missing (`bench baseline random --ipc N --dataset D`, `bench baseline full --dataset D`).")


def _reference(refs: pd.DataFrame, team: str, dataset: str, arch: str) -> Estimate | None:
    mine = refs[(refs["team"] == team) & (refs["dataset"] == dataset) & (refs["arch"] == arch)]
    return estimate(mine.iloc[-1]) if len(mine) else None


def _interval(est: Estimate, scale: float = 1.0, sign: str = "", unit: str = "") -> str:
    ci = est.ci95
    text = f"{est.mean * scale:{sign}.2f}{unit}"
    return text if not ci else f"{text} ({(est.mean - ci) * scale:{sign}.2f} to {(est.mean + ci) * scale:{sign}.2f})"


def versus_cells(used: pd.DataFrame, refs: pd.DataFrame, name_datasets: bool) -> list[str]:
    """Improvement over random at the same IPC and recovery of the full-data score, per dataset."""
    over, recovery = [], []
    for dataset, row in used.iterrows():
        est, prefix = estimate(row), f"{dataset} " if name_datasets else ""
        rand = _reference(refs, results.random_team(int(row["ipc"])), dataset, row["arch"])
        full = _reference(refs, results.FULL_TEAM, dataset, row["arch"])
        over.append(prefix + (_interval(est.minus(rand), sign="+") if rand else "—"))
        recovery.append(prefix + (_interval(est.over(full), 100, unit=" %") if full and full.mean > 0 else "—"))
    return [" / ".join(over), " / ".join(recovery)]


def soft_table(title: str, df: pd.DataFrame, refs: pd.DataFrame) -> Table:
    """The soft-label division: each submission's soft-label score, ranked, beside the score of the
    same images with their hard labels and what the labels cost (bytes; an online teacher's
    parameters and FLOPs)."""
    soft = latest(df[df["labels"].isin(["stored", "online"])], "team", "dataset")  # a team's latest labels
    hard = df[df["labels"] == "hard"]
    if not len(soft):
        return Table(title, [])
    datasets = dataset_order(soft["dataset"])
    columns = ["#", "team", "method", "labels", *datasets, "hard labels", *VERSUS, "label bytes", "image bytes",
               "teacher", "teacher FLOPs", "runs", "IPC", "epochs", "date", "samples"]
    table = Table(title, columns, trusted=("samples",))
    entries = _ranked_entries(soft, datasets)
    for rank, (_, _, team, mine) in zip(_ranks(entries), entries):
        used = mine.loc[[d for d in datasets if d in mine.index]]
        same = hard[(hard["team"] == team) & hard["dataset"].isin(used.index)].set_index("dataset")
        same = same[[sha == used.loc[d, "submission_sha256"] for d, sha in same["submission_sha256"].items()]]
        multi = len(datasets) > 1
        cells = [rank, team, used["method"].iloc[-1], joined(used["labels"])]
        cells += [score_cell(mine.loc[d]) if d in mine.index else "—" for d in datasets]
        cells.append(" / ".join((f"{d} " if multi else "") + (score_cell(same.loc[d]) if d in same.index else "—")
                                for d in used.index))
        cells += versus_cells(used, refs, multi)
        cells += [joined(f"{int(b):,}" for b in used["label_bytes"] if present(b)),
                  joined(f"{int(b):,}" for b in used["image_bytes"] if present(b)),
                  joined(f"{t} ({int(p):,} parameters, {a:.2f} %)" for t, p, a in
                         zip(used["teacher"], used["teacher_parameters"], used["teacher_acc"]) if present(t)) or "—",
                  joined(f"{f:.3g}" for f in used["teacher_flops"] if present(f)) or "—",
                  joined(used["runs"]), joined(used["ipc"]), joined(used["epochs"]), max(used["timestamp"])[:10]]
        cells.append(" ".join(f"[{d}](grids/{grids.grid_name(team, d)})" for d in used.index))
        table.rows.append(cells)
    table.note = ("Images trained towards class distributions rather than class indices (docs/PROTOCOL.md, \"The "
                  "soft-label division\"): *stored* in the submission, or given *online* by the harness's teacher on every "
                  "augmented batch. Never mixed with the hard-label tracks. *hard labels*: the same images trained with "
                  "their hard labels, so the labels' share of the score shows; *label bytes*: what the labels trained "
                  "on take in the submission (online: 0, the teacher's cost is its FLOPs, over all runs); *teacher*: "
                  "the sha256 of its weights, its size and test accuracy. " + VERSUS_NOTE + " Here *over random* "
                  "compares with random images and hard labels: the labels' gain is part of it.")
    return table


def clock_cell(r) -> str:
    """How a generation's clock went: the seconds it got for the protocol's, and the device's
    score before and after it."""
    scores = (f"; device {r['device_score']:.3g} → {r['device_score_after']:.3g}"
              if present(r["device_score"]) and present(r["device_score_after"]) else "")
    if r["clock"] in ("scaled", "clamped", "unstable", "mismatch"):
        return f"{r['clock']}: {r['budget_effective']:.0f} s for {r['budget_seconds']:.0f} s{scores}"
    return f"{r['clock'] or 'wall'}{scores}"


def _reference_table(df: pd.DataFrame) -> Table:
    datasets = dataset_order(df["dataset"])
    table = Table("Reference rows (this harness, `bench baseline`)", ["reference", *datasets, "runs", "IPC", "epochs",
                                                                      "date", "device"])
    for team, mine in df.groupby("team", sort=False):
        mine = mine.set_index("dataset")
        used = mine.loc[[d for d in datasets if d in mine.index]]
        table.rows.append([team, *(score_cell(mine.loc[d]) if d in mine.index else "—" for d in datasets),
                           joined(used["runs"]), joined(used["ipc"]), joined(used["epochs"]),
                           max(used["timestamp"])[:10], joined(used["device"])])
    return table


def _apart_table(df: pd.DataFrame, current: str) -> Table:
    t = Table("Non-standard runs and older protocol versions (not ranked)",
              ["track", "team", "dataset", "arch", "accuracy", "runs", "IPC", "epochs", "gen time", "differs by", "date"])
    for _, r in df.iterrows():
        differs = r["nonstandard"] if r["protocol_version"] == current else \
            " ".join(x for x in (f"protocol={r['protocol_version']}", r["nonstandard"]) if x)
        gen = f"{r['gen_seconds']:.0f} s ({clock_cell(r)})" if present(r["gen_seconds"]) else "—"
        t.rows.append([r["track"], team_cell(r), r["dataset"], r["arch"], score_cell(r),
                       str(r["runs"]), joined([r["ipc"]]), joined([r["epochs"]]), gen, differs,
                       r["timestamp"][:10]])
    return t


def team_cell(r) -> str:
    """The team, and in the soft-label division which labels the row trained with."""
    return f"{r['team']} ({r['labels']} labels)" if present(r["labels"]) else r["team"]


def _current_files(pool: pd.DataFrame, hashes: dict[str, str] | None) -> tuple[pd.DataFrame, set[str]]:
    """Rows of each team's current submission files (reference rows always), and the teams whose
    every row is of older files."""
    if not hashes:
        return pool, set()
    stale = pd.Series([track != "reference" and team in hashes and hashes[team] is not None and sha != hashes[team]
                       for track, team, sha in zip(pool["track"], pool["team"], pool["submission_sha256"])],
                      index=pool.index, dtype=bool)
    return pool[~stale], set(pool[stale]["team"]) - set(pool[~stale]["team"])


def _flagged_table(df: pd.DataFrame) -> Table:
    t = Table("Flagged: images that copy the test set (not ranked)",
              ["track", "team", "dataset", "arch", "matched", "accuracy", "date", "pairs"], trusted=("pairs",))
    for _, r in df.iterrows():
        t.rows.append([r["track"], team_cell(r), r["dataset"], r["arch"], f"{int(r['leaked'])} of {int(r['images'])}",
                       score_cell(r), r["timestamp"][:10],
                       f"[submitted | test](grids/{grids.leak_grid_name(r['team'], r['dataset'])})"])
    t.note = ("The leakage check found these image sets to hold near copies of test images (flipped, shifted, "
              "cropped, recoloured, noisy or re-quantised copies included) beyond the protocol's allowance; "
              "each pair grid shows the submitted image beside the test image it matches. See docs/PROTOCOL.md.")
    return t


def _unverified_table(df: pd.DataFrame) -> Table:
    t = Table("Unverified rows (not ranked)", ["line", "track", "team", "dataset", "status", "accuracy", "date"])
    for _, r in df.iterrows():
        t.rows.append([str(r["line"]), r["track"], r["team"], r["dataset"] or "—", r["status"],
                       score_cell(r) if present(r["acc_mean"]) else "—", r["timestamp"][:10]])
    t.note = ("These rows of results.csv do not carry a valid signature of the organisers' key: added or edited "
              "by hand, or written without the key. `bench results check` lists them; `bench results verify` "
              "re-runs an evaluation.")
    return t


def build_tables(rows: list[results.Row], hashes: dict[str, str | None] | None = None,
                 charts: Path | None = None) -> list[Table]:
    """hashes: each team's current submission hash; rows of other files are not ranked; charts:
    where the anytime curves' charts are written (None: not written)."""
    df = frame([row.result for row in rows])
    df["line"] = [row.line for row in rows]
    verified = pd.Series([row.verified is not False for row in rows], index=df.index, dtype=bool)
    current, challenge = str(current_version()), load_protocol().challenge_arch
    ok = df[(df["status"] == results.Status.OK.value) & verified]
    points = ok["anytime"].notna() & (ok["anytime"] < 1)
    curve_rows = ok[points]  # never ranked: shown as curves
    ok = ok[~points]
    flagged = ok[ok["flagged"].fillna(False).astype(bool)]
    ok = ok[~ok.index.isin(flagged.index)]
    pool, pending = _current_files(ok[ok["standard"] & (ok["protocol_version"] == current)], hashes)
    pool = pool[pool["dataset"].isin(list(REGISTRY))]  # a hand-made dataset name is never ranked (nor a crash)
    ranked_pool = pool[pool["arch"] == challenge]
    references = latest(pool[pool["track"] == "reference"], "team", "dataset", "arch")
    tables = []
    for track, title in TRACK_TITLES.items():
        mine = latest(ranked_pool[ranked_pool["track"] == track], "team", "dataset", "labels")
        if track == "soft-label":
            table = soft_table(title, mine, references)
        else:
            table = _track_table(title, mine, track == "generative", references) if len(mine) else Table(title, [])
        table.note = table.note or "No results yet."
        waiting = sorted(t for t in pending if t in set(ok[ok["track"] == track]["team"]))
        if waiting:
            table.note += ("\n\nNot ranked until evaluated again (their files changed since their last standard "
                           f"evaluation): {', '.join(markdown_cell(t) for t in waiting)}.")
        tables.append(table)
    refs = references[references["arch"] == challenge]
    if len(refs):
        tables.append(_reference_table(refs))
    tables += cross_arch_tables(latest(pool[pool["labels"] != "hard"], "track", "team", "dataset", "arch"), challenge)
    apart = ok[~ok["standard"] | (ok["protocol_version"] != current)]
    if len(apart):
        tables.append(_apart_table(latest(apart, "track", "team", "dataset", "arch", "labels", "nonstandard",
                                          "protocol_version"),
                                   current))
    curves = curve_table(ok, curve_rows, charts)
    if curves is not None:
        tables.append(curves)
    if len(flagged):
        tables.append(_flagged_table(latest(flagged, "track", "team", "dataset", "arch", "labels")))
    if not verified.all():
        tables.append(_unverified_table(df[~verified]))
    last = latest(df[verified & ~(df["anytime"] < 1)], "team", "dataset", "labels")  # a curve point is not an attempt
    bad = last[last["status"] != results.Status.OK.value]
    if len(bad):
        t = Table("Rejected or failed (latest attempt)", ["team", "dataset", "status", "reason", "date"])
        t.rows = [[r["team"], r["dataset"] or "—", r["status"], r["error"],
                   r["timestamp"][:10]] for _, r in bad.iterrows()]
        tables.append(t)
    return tables


@lru_cache(maxsize=1)
def published_table() -> Table:
    data = yaml.safe_load(PUBLISHED.read_text())
    t = Table("Published ECCV 2024 final results (not produced by this harness)",
              ["track", "rank", "team", "cifar100", "tinyimagenet", "overall"], note=f"Source: {data['source']}.")
    for r in data["rows"]:
        t.rows.append([r["track"], str(r["rank"] or "—"), r["team"], f"{r['cifar100']:.2f}",
                       f"{r['tinyimagenet']:.2f}", f"{r['overall']:.2f}"])
    return t


def to_markdown(tables: list[Table], key: signing.Key | None = None) -> str:
    record = (f"Every ranked row carries a valid signature of the organisers' key `{key.fingerprint}`."
              if key else "The record is unsigned: no organiser key was configured when this page was generated, "
                          "so rows are not verified (docs/INTEGRITY.md).")
    lines = ["# Leaderboard", "",
             "Generated from `results.csv` by the harness (`bench leaderboard`); do not edit by hand. " + record,
             f"Protocol version {current_version()} (docs/PROTOCOL.md). Scores: test accuracy (%) of ConvNetD3-W128 "
             "trained on the submitted images. Class spread = std over classes of the per-class accuracy: a high "
             "spread flags classes the images do not teach (mode collapse).", ""]
    for t in [*tables, published_table()]:
        lines += [f"## {t.title}", ""]
        if t.note:
            lines += [t.note, ""]
        if t.columns and t.rows:
            lines.append("| " + " | ".join(t.columns) + " |")
            lines.append("|" + "---|" * len(t.columns))
            keep = [c in t.trusted for c in t.columns]
            lines += ["| " + " | ".join(cell if trusted else markdown_cell(cell) for cell, trusted in zip(row, keep)) + " |"
                      for row in t.rows]
            lines.append("")
    return "\n".join(lines)


def refresh(root: Path) -> list[Table] | None:
    """Regenerate LEADERBOARD.md once a command has recorded its rows: submission folders are
    hashed first, then the page is written under the results lock. A failure is reported, never
    raised: the rows are in, and the next command (or bench leaderboard) writes the page."""
    try:
        hashes = current_hashes(root)  # before the lock: a slow folder never holds up the others' writes
        with results.locked(root):
            return write(root, hashes)
    except Exception as exc:  # noqa: BLE001
        error(f"LEADERBOARD.md was not regenerated ({type(exc).__name__}: {exc}); the rows are recorded; "
              f"run bench leaderboard after fixing the cause")
        return None


def write(root: Path, hashes: dict[str, str | None]) -> list[Table]:
    """Regenerate LEADERBOARD.md from results.csv (the caller holds the results lock); hashes:
    each team's current submission hash, computed before the lock (submission.current_hashes):
    nothing here reads a submission file. Returns the tables."""
    key = signing.load_key(root)
    tables = build_tables(results.read_rows(root, key), hashes, root / "leaderboard" / "grids")
    atomic_write_text(root / "leaderboard" / "LEADERBOARD.md", to_markdown(tables, key))
    return tables
