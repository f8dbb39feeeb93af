"""leaderboard/results.csv: the source of truth, one typed `Result` per evaluation.

The record's fields are the CSV's columns, in order. Scoring returns a Result, `bench evaluate
--json` prints one, and reading parses every line back into one (numbers as numbers), checking the
header, the column count and every value: a damaged file is refused with the line number and the
repair, never appended to or silently skipped.

Rows are appended under a file lock by rewriting the whole file to a temporary name and renaming
it, so concurrent runs lose nothing and a reader never sees half a file.
"""
from __future__ import annotations

import csv
import enum
import io
import json
import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Iterator

from filelock import FileLock

from evaluator.atomic import atomic_write_text

from . import signing
from .errors import UsageError
from .text import defused, plain

LOCK_TIMEOUT = 600  # seconds a writer waits for another
TEXT_LIMITS = {"method": 200, "error": 300, "nonstandard": 200}  # longest text stored per column
DEFAULT_TEXT_LIMIT = 120
MAX_CELL_CHARS = 100_000  # longer than any cell the harness writes (per-class accuracies of 200 classes)


FULL_TEAM = "Full dataset"  # the reference rows' team names (bench baseline)


def random_team(ipc: int) -> str:
    return f"Random {ipc} IPC"


class Status(str, enum.Enum):
    OK = "ok"
    INVALID = "invalid"  # the submission broke a rule (bad file, bad YAML, bad shard)
    FAILED = "failed"  # it crashed, or its evaluation did
    TIMEOUT = "timeout"  # the generator completed no shard before its deadline


@dataclass(frozen=True)
class Result:
    team: str
    method: str
    track: str  # fixed-ipc | generative | reference | "" (bench evaluate of a file)
    dataset: str
    status: Status
    timestamp: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))
    arch: str = ""  # the network trained ("" on a row that never got to training)
    parameters: int | None = None
    error: str = ""
    ipc: int | None = None
    epochs: int | None = None
    images: int | None = None  # trained on
    images_generated: int | None = None
    images_dropped: int | None = None
    gen_seconds: float | None = None
    budget_seconds: float | None = None  # the protocol's (or --budget's), on the target device
    budget_effective: float | None = None  # what the generator got here: scaled by the calibrated clock
    clock: str = ""  # scaled | clamped | unscaled (no target device) | unstable | wall (--budget)
    device_score: float | None = None  # calibration score of the device just before the generation
    device_score_after: float | None = None  # ... and just after it
    others_cpu: float | None = None  # share of the CPUs other processes used during the generation
    anytime: float | None = None  # < 1: a point of the anytime curve, its fraction of the budget (never ranked);
    # 1: the main row of a generation whose curve was made
    generation_id: str = ""  # the generation the images come from: its main row and curve points share it
    runs: int | None = None
    seeds: tuple[int, ...] = ()
    acc_mean: float | None = None
    acc_std: float | None = None  # sample std over runs
    acc_ci95: float | None = None  # half-width of the 95 % CI of the mean (Student's t)
    acc_runs: tuple[float, ...] = ()
    acc_per_class: tuple[float, ...] = ()  # run-averaged, class index order
    class_spread: float | None = None
    leaked: int | None = None  # images found to be near copies of test images (None: not checked)
    flagged: bool | None = None  # leaked beyond the protocol's fraction: listed apart, never ranked
    # The soft-label division (empty on the hard-label tracks): what the row trained towards, and its cost.
    labels: str = ""  # stored | online (soft-label rows, ranked) | hard (the same images with their hard labels)
    label_bytes: int | None = None  # the labels trained on, as stored in the submission file (online: 0)
    image_bytes: int | None = None  # the images, as stored in the submission file
    teacher: str = ""  # online: sha256 (16 digits) of the harness teacher's weights
    teacher_parameters: int | None = None
    teacher_flops: float | None = None  # the teacher's forward passes during this row's training runs, all runs
    teacher_acc: float | None = None  # the teacher's own test accuracy (%)
    standard: bool = False
    nonstandard: str = ""  # every deviation from the protocol, named
    sandbox: str = ""
    device: str = ""
    precision: str = ""
    compiled: bool | None = None
    eval_seconds: float | None = None
    torch_version: str = ""
    harness_version: str = ""
    protocol_version: str = ""
    git_commit: str = ""
    submission_sha256: str = ""
    protocol_key: str = ""
    signer: str = ""  # fingerprint of the organiser key that signed the row ("" unsigned)
    signature: str = ""  # HMAC-SHA256 of every other cell, with that key

    def to_json(self) -> dict:
        return {**asdict(self), "status": self.status.value}

    def with_text_cleaned(self) -> "Result":
        """Every text field one bounded line without control characters (what the CSV stores)."""
        clean = {f.name: plain(getattr(self, f.name), TEXT_LIMITS.get(f.name, DEFAULT_TEXT_LIMIT))
                 for f in fields(self) if f.type == "str"}
        return replace(self, **{**clean, "method": defused(clean["method"])})


COLUMNS = tuple(f.name for f in fields(Result))
# Columns added since the first signed rows: a file written before them (its header lacks them)
# is read with these empty, and a row whose added cells are all empty is signed without them, so
# rows signed before they existed still verify after the file is rewritten with today's header.
ADDED = ("labels", "label_bytes", "image_bytes", "teacher", "teacher_parameters", "teacher_flops", "teacher_acc")


class ResultsError(UsageError):
    """results.csv is damaged: exit 2 with the line and the repair."""


# -- values <-> CSV cells ------------------------------------------------------------------------

def _cell(value: object) -> str:
    if isinstance(value, Status):
        return value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if math.isfinite(value) else ""
    if isinstance(value, tuple):
        return "" if not value else json.dumps([round(v, 4) if isinstance(v, float) else v for v in value])
    return "" if value is None else str(value)


def _number(text: str, kind: type):
    value = kind(text)
    if kind is float and not math.isfinite(value):
        raise ValueError("not finite")
    return value


def _parse(kind: str, text: str):
    """A CSV cell back to the field's type (the annotation string of the Result field)."""
    if kind == "str":
        return text
    if kind == "Status":
        return Status(text)
    if kind in ("bool", "bool | None"):
        if text in ("true", "false"):
            return text == "true"
        if text == "" and kind.endswith("None"):
            return None
        raise ValueError("expected true or false")
    if kind in ("int | None", "float | None"):
        return None if text == "" else _number(text, int if kind.startswith("int") else float)
    if kind.startswith("tuple["):
        if text == "":
            return ()
        items = json.loads(text)
        elem = int if kind.startswith("tuple[int") else float
        if not isinstance(items, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
            raise ValueError("expected a JSON list of numbers")
        return tuple(_number(str(v), elem) if elem is int else float(v) for v in items)
    raise TypeError(f"no parser for {kind}")


_KINDS = {f.name: f.type for f in fields(Result)}


def parse_row(cells: list[str], where: str) -> Result:
    if len(cells) != len(COLUMNS):
        raise ResultsError(f"{where}: {len(cells)} fields, expected {len(COLUMNS)}; {REPAIR}")
    values = {}
    for name, text in zip(COLUMNS, cells):
        try:
            if len(text) > MAX_CELL_CHARS:
                raise ValueError("too long")
            values[name] = _parse(_KINDS[name], text)
        except (ValueError, TypeError, RecursionError, json.JSONDecodeError):
            raise ResultsError(f"{where}: column '{name}' holds {plain(text, 40)!r}, not a valid "
                               f"{_KINDS[name]}; {REPAIR}") from None
    result = Result(**values)
    problem = _inconsistency(result)
    if problem:
        raise ResultsError(f"{where}: {problem}; the harness never writes such a row: {REPAIR}")
    return result


def _inconsistency(r: Result) -> str | None:
    """What makes a parsed row impossible: a score that is not the mean of its runs, run counts
    that disagree. The page shows acc_mean and ranks by acc_runs: they must agree."""
    if r.status is not Status.OK:
        return None
    if not r.acc_runs or r.acc_mean is None or r.runs != len(r.acc_runs) or len(r.seeds) != len(r.acc_runs):
        return "a successful row needs runs = the number of seeds = the number of accuracies in acc_runs, and acc_mean"
    if abs(r.acc_mean - sum(r.acc_runs) / len(r.acc_runs)) > 0.01:
        return f"acc_mean {r.acc_mean} is not the mean of acc_runs"
    return None


REPAIR = ("repair that line (or delete it), or move the file aside to start a new one; "
          "`bench results check` lists every problem")


# -- the file ------------------------------------------------------------------------------------

def results_path(root: Path) -> Path:
    return root / "leaderboard" / "results.csv"


@contextmanager
def locked(root: Path) -> Iterator[None]:
    """Exclusive access to results.csv and the files generated from it."""
    path = results_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT):
        yield


def _rows(path: Path) -> Iterator[tuple[str, list[str]]]:
    """(where, cells) of every data row, cells in the current column order; raises ResultsError on
    a damaged header or encoding. where = "<path> line <N>". A header of an earlier version, the
    current one without some ADDED columns, is read with those cells empty."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ResultsError(f"{path}: not UTF-8 text (byte {exc.start}); {REPAIR}") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        place = _legacy_places(header) if header is not None and tuple(header) != COLUMNS else None
        if header is not None and tuple(header) != COLUMNS and place is None:
            missing = [c for c in COLUMNS if c not in header]
            extra = [plain(c, 30) for c in header if c not in COLUMNS]
            raise ResultsError(f"{path}: line 1 is not this harness's header (missing {missing[:4]}, unknown "
                               f"{extra[:4]}); it was written by another version or by hand: move it aside")
        for cells in reader:
            if cells:
                if place is not None and len(cells) == len(header):
                    cells = [cells[place[c]] if c in place else "" for c in COLUMNS]
                yield f"{path} line {reader.line_num}", cells
    except csv.Error as exc:
        raise ResultsError(f"{path} line {reader.line_num}: unreadable CSV ({exc}); {REPAIR}") from None


def _legacy_places(header: list[str]) -> dict[str, int] | None:
    """Where each column is in an earlier version's header (the current columns in order, less
    some ADDED ones); None: not such a header."""
    kept = [c for c in COLUMNS if c in header]
    if header != kept or any(c not in ADDED for c in COLUMNS if c not in header):
        return None
    return {c: i for i, c in enumerate(header)}


@dataclass(frozen=True)
class Row:
    """A parsed row, where it is, and whether its signature verifies (None: no key configured)."""
    where: str
    result: Result
    verified: bool | None

    @property
    def line(self) -> int:
        return int(self.where.rsplit(" ", 1)[1])


_ADDED_AT = frozenset(COLUMNS.index(c) for c in ADDED)


def _unsigned_cells(cells: list[str]) -> list[str]:
    """What a signature covers: every cell but `signature` (the last column); of a row whose ADDED
    cells are all empty (one of the tracks without them, or written before them), not those."""
    if any(cells[i] for i in _ADDED_AT):
        return cells[:-1]
    return [cell for i, cell in enumerate(cells[:-1]) if i not in _ADDED_AT]


def read_rows(root: Path, key: signing.Key | None = None) -> list[Row]:
    """Every row, parsed and (with a key) verified; the first damage raises ResultsError."""
    path = results_path(root)
    if not path.is_file():
        return []
    rows, previous = [], ""
    for where, cells in _rows(path):
        result = parse_row(cells, where)
        verified = None
        if key is not None:
            verified = key.verifies(_unsigned_cells(cells), result.signer, result.signature, previous)
            previous = result.signature if verified else previous
        rows.append(Row(where, result, verified))
    return rows


def _chain_end(rows: list[Row]) -> str:
    """The signature the next signed row chains to: that of the last row that verifies."""
    return next((row.result.signature for row in reversed(rows) if row.verified), "")


def read_results(root: Path) -> list[Result]:
    """Every row, parsed; the first problem raises ResultsError."""
    return [row.result for row in read_rows(root)]


def unverified(root: Path, key: signing.Key) -> list[str]:
    """One line per row whose signature does not verify with the key (added or edited by hand,
    written without a key, or signed with another)."""
    out = []
    for row in read_rows(root, key):
        if row.verified:
            continue
        r = row.result
        why = ("no signature" if not r.signature else "signed with another key" if r.signer != key.fingerprint
               else "signature does not match its content and place (edited, replayed or moved after signing, "
                    "or a signed row before it was removed)")
        out.append(f"{row.where}: {plain(r.team, 40)}/{plain(r.dataset, 40) or '-'} ({r.status.value}) is unverified: "
                   f"{why}; it is not ranked (re-evaluate it with the key configured, or delete the line)")
    return out


def check_results(root: Path) -> list[str]:
    """Every problem of results.csv, one line each (empty: the file is sound)."""
    path = results_path(root)
    if not path.is_file():
        return []
    problems = []
    try:
        for where, cells in _rows(path):
            try:
                parse_row(cells, where)
            except ResultsError as exc:
                problems.append(str(exc))
    except ResultsError as exc:
        problems.append(str(exc))
    return problems


def append_result(root: Path, result: Result, key: signing.Key | None = None) -> Result:
    """Append one row atomically, signed with the key if one is given; the caller holds
    `locked(root)`. Refuses a damaged file."""
    path = results_path(root)
    rows = read_rows(root, key)  # a damaged file is never appended to
    existing = path.read_text(encoding="utf-8") if path.is_file() else ""
    if existing and not existing.startswith(",".join(COLUMNS) + "\n"):  # an earlier header: rewrite in today's
        existing = _as_csv([list(COLUMNS), *(cells for _, cells in _rows(path))])
    clean = replace(result.with_text_cleaned(), signer=key.fingerprint if key else "", signature="")
    cells = [_cell(getattr(clean, c)) for c in COLUMNS]
    if key is not None:
        clean = replace(clean, signature=key.sign(_unsigned_cells(cells), _chain_end(rows)))
        cells[-1] = clean.signature
    if existing and not existing.endswith("\n"):
        existing += "\n"  # a hand-edited file without a final newline: the new row starts a line
    atomic_write_text(path, existing + _as_csv([*([] if existing else [list(COLUMNS)]), cells]))
    return clean


def _as_csv(lines: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(lines)
    return buf.getvalue()


def find_ok(root: Path, protocol_key: str, key: signing.Key | None = None) -> Result | None:
    """The latest successful row with this protocol key, if any; with a signing key, only a row
    that verifies counts (a forged row never makes an honest evaluation skip)."""
    matches = [row.result for row in read_rows(root, key) if row.result.protocol_key == protocol_key
               and row.result.status is Status.OK and row.verified is not False]
    return matches[-1] if matches else None
