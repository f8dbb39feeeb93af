"""Submission folders: discovery under submissions/, the submission.yaml schema, file hashes.

    submissions/<team>/submission.yaml   team, method, track, datasets [, contact, paper, notes]
                                         generative: [entrypoint (generate.py), args]
    submissions/<team>/<dataset>.pt|.safetensors   fixed-ipc: one file per dataset entered
"""
from __future__ import annotations

import difflib
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import yaml

from evaluator.data import REGISTRY

from .errors import SubmissionError, UsageError
from .text import plain

TRACKS = ("fixed-ipc", "generative")
SPEC_FILE = "submission.yaml"
DATA_SUFFIXES = (".pt", ".pth", ".safetensors")
TEAM_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # use fullmatch: `$` would allow a final newline
REQUIRED = {"team": str, "method": str, "track": str, "datasets": list}
OPTIONAL = {"contact": str, "paper": str, "notes": str, "entrypoint": str, "args": list}
GENERATIVE_ONLY = ("entrypoint", "args")
MAX_SPEC_BYTES = 64 << 10
TEXT_LIMITS = {"team": 64, "track": 40, "method": 200, "contact": 200, "paper": 300, "notes": 1000, "entrypoint": 200}
MAX_ARGS, MAX_ARG_CHARS = 64, 1000


@dataclass(frozen=True)
class Submission:
    folder: Path
    team: str
    method: str
    track: str
    datasets: tuple[str, ...]
    contact: str | None = None
    paper: str | None = None
    notes: str | None = None
    entrypoint: str = "generate.py"
    args: tuple[str, ...] = ()

    def data_file(self, dataset: str) -> Path:
        """The fixed-IPC file for a dataset: <dataset>.pt, .pth or .safetensors (exactly one)."""
        found = [self.folder / f"{dataset}{s}" for s in DATA_SUFFIXES if (self.folder / f"{dataset}{s}").is_file()]
        if not found:
            raise SubmissionError(f"{self.folder}/{dataset}.pt: missing; add the {dataset} tensor file "
                                  f"(.pt or .safetensors) or remove {dataset} from datasets in {SPEC_FILE}")
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise SubmissionError(f"{self.folder}: several files for {dataset} ({names}); keep exactly one")
        return found[0]


def _bad(path: Path, message: str) -> SubmissionError:
    return SubmissionError(f"{path}: {message}")


def parse_spec(folder: Path) -> Submission:
    """Read and validate submission.yaml; every error names the key and the fix."""
    path = folder / SPEC_FILE
    if not path.is_file():
        raise _bad(path, f"missing; create it with team, method, track ({' or '.join(TRACKS)}) and datasets")
    if path.is_symlink():
        raise _bad(path, "a symbolic link; submission folders hold regular files only")
    if path.stat().st_size > MAX_SPEC_BYTES:
        raise _bad(path, f"larger than {MAX_SPEC_BYTES >> 10} KiB; keep it to the keys below")
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise _bad(path, f"invalid YAML{at} ({getattr(exc, 'problem', None) or 'syntax error'}); fix the syntax") from None
    except UnicodeDecodeError:
        raise _bad(path, "not UTF-8 text; save it as UTF-8") from None
    except (ValueError, TypeError, AttributeError, RecursionError, OverflowError) as exc:
        # valid YAML syntax, impossible value: a date like 2024-02-30, `!!float abc`, deep nesting
        raise _bad(path, f"a value YAML cannot read ({type(exc).__name__}: {plain(exc, 80)}); quote it as text") from None
    if not isinstance(spec, dict):
        raise _bad(path, "must be a mapping of keys (team: ..., method: ..., ...)")
    for key in spec:
        if key not in REQUIRED and key not in OPTIONAL:
            close = difflib.get_close_matches(str(key), [*REQUIRED, *OPTIONAL], n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise _bad(path, f"unknown key '{plain(key, 40)}'{hint}; allowed: {', '.join([*REQUIRED, *OPTIONAL])}")
    for key, kind in REQUIRED.items():
        if key not in spec:
            raise _bad(path, f"missing key '{key}'; add it")
    for key, kind in {**REQUIRED, **OPTIONAL}.items():
        if key in spec and not isinstance(spec[key], kind):
            raise _bad(path, f"key '{key}' must be a {kind.__name__}, got {type(spec[key]).__name__}")
    for key, limit in TEXT_LIMITS.items():
        if isinstance(spec.get(key), str) and len(spec[key]) > limit:
            raise _bad(path, f"key '{key}' is {len(spec[key])} characters long; at most {limit}")
    if spec["track"] not in TRACKS:
        raise _bad(path, f"key 'track' is '{spec['track']}'; use one of {', '.join(TRACKS)}")
    if spec["team"] != folder.name:
        raise _bad(path, f"key 'team' is '{spec['team']}' but the folder is '{folder.name}'; make them equal")
    datasets = spec["datasets"]
    if not datasets or not all(isinstance(d, str) for d in datasets):
        raise _bad(path, "key 'datasets' must be a non-empty list of dataset names, e.g. [cifar100, tinyimagenet]")
    for d in datasets:
        if d not in REGISTRY:
            raise _bad(path, f"key 'datasets' names unknown dataset '{plain(d, 40)}'; known: {', '.join(REGISTRY)}")
    if len(set(datasets)) != len(datasets):
        raise _bad(path, "key 'datasets' lists a dataset twice; list each once")
    if spec["track"] != "generative":
        for key in GENERATIVE_ONLY:
            if key in spec:
                raise _bad(path, f"key '{key}' is only for track: generative; remove it")
    args = spec.get("args", [])
    if not all(isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in args):
        raise _bad(path, "key 'args' must be a list of strings or numbers")
    if len(args) > MAX_ARGS or any(_too_long(a) for a in args):
        raise _bad(path, f"key 'args': at most {MAX_ARGS} arguments of at most {MAX_ARG_CHARS} characters each")
    return Submission(
        folder=folder, team=spec["team"], method=spec["method"], track=spec["track"], datasets=tuple(datasets),
        contact=spec.get("contact"), paper=spec.get("paper"), notes=spec.get("notes"),
        entrypoint=spec.get("entrypoint", "generate.py"), args=tuple(str(a) for a in args),
    )


def _too_long(arg: object) -> bool:
    """An argument over the length limit (a huge YAML integer cannot even become text)."""
    try:
        text = str(arg)
    except ValueError:
        return True
    return len(text) > MAX_ARG_CHARS or "\0" in text


def submission_folder(root: Path, team: str) -> Path:
    if not TEAM_PATTERN.fullmatch(team):
        raise UsageError(f"team '{team}': use letters, digits, '_', '-', '.' (a folder name under submissions/)")
    folder = root / "submissions" / team
    if not folder.is_dir():
        known = discover(root)
        close = difflib.get_close_matches(team, known, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise UsageError(f"no submission folder submissions/{team}; {hint}known: {', '.join(known) or 'none'}")
    return folder


def discover(root: Path) -> list[str]:
    """Team folders under submissions/, sorted (folders without submission.yaml included)."""
    base = root / "submissions"
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def file_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file of the submission, by path relative to the folder. A submission folder
    is closed: a symbolic link (to a file or a folder, inside or out) or a special file is refused,
    so the hash covers every byte an evaluation can read."""
    if folder.is_symlink():
        raise SubmissionError(f"{folder}: a symbolic link; a submission must be a real folder under submissions/")
    hashes = {}
    for dirpath, dirnames, filenames in os.walk(folder, onerror=_raise):
        dirnames.sort()
        for name in [*dirnames, *sorted(filenames)]:
            path = Path(dirpath) / name
            rel = path.relative_to(folder).as_posix()
            if not _utf8(rel):
                raise SubmissionError(f"{plain(folder / rel, 200)}: the file name is not UTF-8 text; rename it")
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                raise SubmissionError(f"{folder}/{rel}: a symbolic link; submission folders hold regular files only: "
                                      f"copy the file in")
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                raise SubmissionError(f"{folder}/{rel}: not a regular file (a device, pipe or socket); remove it")
            hashes[rel] = _file_digest(path)
    return hashes


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:  # undecodable bytes, kept by the file system encoding as surrogates
        return False


_DIGESTS: dict[tuple, str] = {}  # (path, device, inode, size, mtime): sha256 — each file hashed once per process


def file_sha256(path: Path) -> str:
    """The sha256 of a file's contents, read in blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_digest(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = file_sha256(path)
    return _DIGESTS[key]


def _raise(exc: OSError) -> None:
    raise SubmissionError(f"{exc.filename}: cannot be read ({exc.strerror}); make the folder readable") from None


def unreadable_by_others(folder: Path) -> list[str]:
    """Files and folders an unprivileged user cannot read (the sandbox runs as one)."""
    out = [] if folder.stat().st_mode & 0o005 == 0o005 else ["."]
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            need = 0o005 if path.is_dir() else 0o004
            if path.lstat().st_mode & need != need:
                out.append(path.relative_to(folder).as_posix())
    return sorted(out)


def current_hashes(root: Path) -> dict[str, str]:
    """The combined hash of every team folder's files as they are now ("" where it cannot be
    hashed: a folder with a symbolic link ranks nothing until it is fixed)."""
    hashes = {}
    for team in discover(root):
        try:
            hashes[team] = combined_hash(file_hashes(root / "submissions" / team))
        except Exception:  # noqa: BLE001 — one team's odd folder must not break the page for everyone
            hashes[team] = ""
    return hashes


def combined_hash(hashes: dict[str, str]) -> str:
    """One digest for the whole folder: names and contents."""
    digest = hashlib.sha256()
    for name, h in sorted(hashes.items()):
        digest.update(f"{name}\0{h}\n".encode())
    return digest.hexdigest()
