"""Submission folders: discovery under submissions/, the submission.yaml schema, file hashes.

    submissions/<team>/submission.yaml   team, method, track, datasets [, contact, paper, notes]
                                         generative: [entrypoint (generate.py), args]
    submissions/<team>/<dataset>.pt|.safetensors   fixed-ipc: one file per dataset entered
                                         soft-label: the same, and labels (stored | teacher)
"""
from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from evaluator.atomic import atomic_write_text
from evaluator.registry import REGISTRY

from .errors import SubmissionError, UsageError
from .text import plain
from .yamlsafe import YamlError, load_yaml_text

TRACKS = ("fixed-ipc", "generative", "soft-label")
LABEL_MODES = ("stored", "teacher")  # soft-label: distributions in the file, or the harness teacher's online
SPEC_FILE = "submission.yaml"
DATA_SUFFIXES = (".pt", ".pth", ".safetensors")
TEAM_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # use fullmatch: `$` would allow a final newline
REQUIRED = {"team": str, "method": str, "track": str, "datasets": list}
OPTIONAL = {"contact": str, "paper": str, "notes": str, "entrypoint": str, "args": list, "labels": str}
GENERATIVE_ONLY = ("entrypoint", "args")
MAX_SPEC_BYTES = 64 << 10
TEXT_LIMITS = {"team": 64, "track": 40, "method": 200, "contact": 200, "paper": 300, "notes": 1000, "entrypoint": 200}
MAX_ARGS, MAX_ARG_CHARS = 64, 1000
# What a team folder may hold, checked from the folder listing before any file is read.
MAX_DEPTH = 16  # folder levels below the team folder
MAX_ENTRIES = 10_000  # files and folders
MAX_PATH_CHARS = 512  # a path relative to the team folder
MAX_FILE_BYTES = 16 << 30  # one file (its length): generators ship model weights
MAX_TOTAL_BYTES = 32 << 30  # all files together
SPARSE_MIN_BYTES = 1 << 20  # a larger file must have at least half its length stored on disk
HASH_CACHE = Path("leaderboard") / ".runs" / "file-hashes.json"  # sha256 by file identity, kept between runs


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
    labels: str = ""  # soft-label track: stored | teacher

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
    same = _same_but_case(folder)
    if same:
        others = ", ".join(f"submissions/{name}" for name in same)
        raise SubmissionError(f"{folder}: differs only in case from {others}; team names must differ in more "
                              f"than case: rename one of the folders")
    try:
        spec = load_yaml_text(path.read_text(), str(path))
    except UnicodeDecodeError:
        raise _bad(path, "not UTF-8 text; save it as UTF-8") from None
    except YamlError as exc:  # duplicate keys, aliases, syntax, values Python cannot build
        raise SubmissionError(str(exc)) from None
    if not isinstance(spec, dict):
        raise _bad(path, "must be a mapping of keys (team: ..., method: ..., ...)")
    for key in spec:
        if not isinstance(key, str):  # a number, a date, a list: never a key (and a huge integer cannot even print)
            raise _bad(path, f"a key that is not text ({type(key).__name__}); keys are: {', '.join([*REQUIRED, *OPTIONAL])}")
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
    if spec["track"] == "soft-label" and spec.get("labels") not in LABEL_MODES:
        raise _bad(path, f"key 'labels' is {plain(repr(spec.get('labels', 'missing')), 40)}; a soft-label submission "
                         f"says where its labels come from: stored (in its files) or teacher (the harness's, online)")
    if spec["track"] != "soft-label" and "labels" in spec:
        raise _bad(path, "key 'labels' is only for track: soft-label; remove it")
    args = spec.get("args", [])
    if not all(isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in args):
        raise _bad(path, "key 'args' must be a list of strings or numbers")
    if len(args) > MAX_ARGS or any(_too_long(a) for a in args):
        raise _bad(path, f"key 'args': at most {MAX_ARGS} arguments of at most {MAX_ARG_CHARS} characters each")
    return Submission(
        folder=folder, team=spec["team"], method=spec["method"], track=spec["track"], datasets=tuple(datasets),
        contact=spec.get("contact"), paper=spec.get("paper"), notes=spec.get("notes"),
        entrypoint=spec.get("entrypoint", "generate.py"), args=tuple(str(a) for a in args),
        labels=spec.get("labels", ""),
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


def _same_but_case(folder: Path) -> list[str]:
    """The other folders beside this one whose name differs only in case (on a case-insensitive
    file system they are one folder, and their grids one file)."""
    name = folder.name.lower()
    return sorted(p.name for p in folder.parent.iterdir()
                  if p.name != folder.name and p.name.lower() == name and p.is_dir())


def discover(root: Path) -> list[str]:
    """Team folders under submissions/, sorted (folders without submission.yaml included)."""
    base = root / "submissions"
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def walk(folder: Path) -> list[tuple[str, os.stat_result]]:
    """Every file and folder of a submission, as (path relative to the folder, lstat), sorted.
    A submission folder is closed and bounded: a symbolic link (to a file or a folder, inside or
    out), a special file, a name that is not UTF-8, and anything past the limits at the top of
    this module are refused (SubmissionError) from the listing alone, before any file is read,
    so that the hash covers every byte an evaluation can read at a cost known in advance."""
    if folder.is_symlink():
        raise SubmissionError(f"{folder}: a symbolic link; a submission must be a real folder under submissions/")
    found, total, pending = [], 0, [("", 0)]  # pending: (folder relative to the team folder, its depth)
    while pending:
        rel_dir, depth = pending.pop()
        for name in _list(folder, rel_dir, MAX_ENTRIES - len(found)):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if not _utf8(rel):
                raise _refused(folder, rel, "the file name is not UTF-8 text; rename it")
            if len(rel) > MAX_PATH_CHARS:
                raise _refused(folder, rel, f"a path of {len(rel)} characters; at most {MAX_PATH_CHARS} "
                                            f"(relative to the team folder): shorten the names")
            if depth >= MAX_DEPTH:
                raise _refused(folder, rel, f"folders nested more than {MAX_DEPTH} levels deep; flatten the folder")
            st = _lstat(folder / rel)
            if stat.S_ISLNK(st.st_mode):
                raise _refused(folder, rel, "a symbolic link; submission folders hold regular files only: "
                                            "copy the file in")
            if stat.S_ISDIR(st.st_mode):
                pending.append((rel, depth + 1))
            elif not stat.S_ISREG(st.st_mode):
                raise _refused(folder, rel, "not a regular file (a device, pipe or socket); remove it")
            else:
                total += st.st_size
                _check_size(folder, rel, st, total)
            found.append((rel, st))
    return sorted(found)


def _refused(folder: Path, rel: str, message: str) -> SubmissionError:
    return SubmissionError(f"{plain(folder / rel, 200)}: {message}")


def _list(folder: Path, rel_dir: str, room: int) -> list[str]:
    """The names in one folder, sorted; refused past `room` more entries without listing the rest."""
    names = []
    try:
        with os.scandir(folder / rel_dir) as entries:
            for entry in entries:
                if len(names) == room:
                    raise _refused(folder, rel_dir, f"the team folder holds more than {MAX_ENTRIES} files and "
                                                    f"folders; keep only what the submission needs")
                names.append(entry.name)
    except OSError as exc:
        _raise(exc)
    return sorted(names)


def _lstat(path: Path) -> os.stat_result:
    try:
        return path.lstat()
    except OSError as exc:
        _raise(exc)


def _check_size(folder: Path, rel: str, st: os.stat_result, total: int) -> None:
    """A file's length (as the listing gives it) within the limits, and stored on disk."""
    if st.st_size > MAX_FILE_BYTES:
        raise _refused(folder, rel, f"{_gib(st.st_size)} long; at most {_gib(MAX_FILE_BYTES)} per file")
    if total > MAX_TOTAL_BYTES:
        raise _refused(folder, rel, f"the folder's files come to more than {_gib(MAX_TOTAL_BYTES)} with this one; "
                                    f"keep only what the submission needs")
    if st.st_size > SPARSE_MIN_BYTES and st.st_blocks * 512 < st.st_size // 2:
        raise _refused(folder, rel, f"{_gib(st.st_size)} long but only {_gib(st.st_blocks * 512)} on disk: a sparse "
                                    f"file (a file on a compressing file system looks the same); store it in full, "
                                    f"e.g. cp --sparse=never, on a file system that does not compress")


def _gib(size: int) -> str:
    return f"{size / (1 << 30):.3g} GiB"


def file_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file of the submission, by path relative to the folder (see `walk`)."""
    return {rel: _file_digest(folder / rel, st) for rel, st in walk(folder) if stat.S_ISREG(st.st_mode)}


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:  # undecodable bytes, kept by the file system encoding as surrogates
        return False


_DIGESTS: dict[str, str] = {}  # file identity (`_identity`): sha256 — each file hashed once per process


def file_sha256(path: Path) -> str:
    """The sha256 of a file's contents, read in blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _identity(st: os.stat_result) -> str:
    """What changes whenever a file's contents may have: device, inode, size, modification and
    change times (the change time cannot be set back by the file's owner)."""
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


def _file_digest(path: Path, st: os.stat_result) -> str:
    key = _identity(st)
    if key not in _DIGESTS:
        try:
            _DIGESTS[key] = file_sha256(path)
        except OSError as exc:  # e.g. a file its team made unreadable
            _raise(exc)
    return _DIGESTS[key]


def _raise(exc: OSError) -> None:
    raise SubmissionError(f"{plain(exc.filename, 200)}: cannot be read ({exc.strerror}); "
                          f"make the folder readable") from None


def unreadable_by_others(folder: Path) -> list[str]:
    """Files and folders an unprivileged user cannot read (the sandbox runs as one)."""
    out = [] if folder.stat().st_mode & 0o005 == 0o005 else ["."]
    for rel, st in walk(folder):
        need = 0o005 if stat.S_ISDIR(st.st_mode) else 0o004
        if st.st_mode & need != need:
            out.append(rel)
    return sorted(out)


def current_hashes(root: Path, hash_new_files: bool = True) -> dict[str, str | None]:
    """The combined hash of every team folder's files as they are now ("" where the folder is
    refused: one with a symbolic link ranks nothing until it is fixed). A file whose identity
    (`_identity`) is in the cache under leaderboard/.runs/ is not read again; with
    hash_new_files=False no file is read at all, and a team with a file not in the cache gets
    None (unknown)."""
    cached = _load_hash_cache(root)
    known, listed, hashes = {**cached, **_DIGESTS}, set(), {}
    for team in discover(root):
        folder = root / "submissions" / team
        try:
            files = {rel: _identity(st) for rel, st in walk(folder) if stat.S_ISREG(st.st_mode)}
            listed.update(files.values())
            if not hash_new_files and any(key not in known for key in files.values()):
                hashes[team] = None
                continue
            for rel, key in files.items():
                if key not in known:
                    known[key] = _DIGESTS[key] = file_sha256(folder / rel)
            hashes[team] = combined_hash({rel: known[key] for rel, key in files.items()})
        except Exception:  # noqa: BLE001 — one team's odd folder must not break the page for everyone
            hashes[team] = ""
    keep = {key: known[key] for key in sorted(listed) if key in known}  # the files there are now
    if keep != cached:
        _save_hash_cache(root, keep)
    return hashes


def _load_hash_cache(root: Path) -> dict[str, str]:
    """The persistent cache; a missing or damaged file is an empty cache."""
    try:
        cache = json.loads((root / HASH_CACHE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(cache, dict):
        return {}
    return {k: v for k, v in cache.items() if isinstance(k, str) and isinstance(v, str) and len(v) == 64}


def _save_hash_cache(root: Path, digests: dict[str, str]) -> None:
    try:
        atomic_write_text(root / HASH_CACHE, json.dumps(digests))
    except OSError:
        pass  # a read-only checkout: hashing is only slower


def combined_hash(hashes: dict[str, str]) -> str:
    """One digest for the whole folder: names and contents."""
    digest = hashlib.sha256()
    for name, h in sorted(hashes.items()):
        digest.update(f"{name}\0{h}\n".encode())
    return digest.hexdigest()
