"""Reading a dataset's original distribution: an archive (.tar.gz, .zip) or its unpacked folder.

Members are read straight from the archive, never extracted, so a hostile archive cannot write
outside the cache. Names are matched by their path below the top folder.
"""
from __future__ import annotations

import io
import pickle
import tarfile
import zipfile
from pathlib import Path

from ..errors import DatasetError


class SourceTree:
    """Uniform read access to `top/relative/path` members of a folder, a tar or a zip."""

    def __init__(self, path: Path, top: str):
        self.path, self.top = Path(path), top
        if self.path.is_dir():
            base = self.path / top if (self.path / top).is_dir() else self.path
            self._files = {p.relative_to(base).as_posix(): p for p in base.rglob("*") if p.is_file()}
            self.kind = "folder"
        elif zipfile.is_zipfile(self.path):
            self._zip = zipfile.ZipFile(self.path)
            self._files = {self._strip(n): n for n in self._zip.namelist() if not n.endswith("/")}
            self.kind = "zip"
        elif self.path.is_file() and tarfile.is_tarfile(self.path):
            self._tar = tarfile.open(self.path)
            self._files = {self._strip(m.name): m for m in self._tar.getmembers() if m.isfile()}
            self.kind = "tar"
        else:
            raise DatasetError(f"{self.path}: not a folder, .zip or .tar.gz archive; pass the original archive or its unpacked folder")

    def _strip(self, name: str) -> str:
        name = name.lstrip("./")
        return name[len(self.top) + 1 :] if name.startswith(self.top + "/") else name

    def names(self) -> list[str]:
        return sorted(self._files)

    def has(self, name: str) -> bool:
        return name in self._files

    def read(self, name: str) -> bytes:
        if name not in self._files:
            raise DatasetError(f"{self.path}: member '{self.top}/{name}' is missing; is this the original archive?")
        ref = self._files[name]
        if self.kind == "folder":
            return ref.read_bytes()
        if self.kind == "zip":
            return self._zip.read(ref)
        return self._tar.extractfile(ref).read()


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """The CIFAR batches are pickled dicts of numpy arrays: allow exactly that, nothing else."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),  # how Python 3 writes bytes into a protocol-2 pickle
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_numpy_pickle(data: bytes, where: str) -> dict:
    try:
        obj = _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()
    except Exception as exc:
        raise DatasetError(f"{where}: cannot read the pickled batch ({exc}); re-download the archive") from None
    if not isinstance(obj, dict):
        raise DatasetError(f"{where}: expected a pickled dict, found {type(obj).__name__}; re-download the archive")
    return obj


def download(url: str, raw_dir: Path, filename: str, md5: str, name: str = "") -> Path:
    """Fetch an archive with torchvision's downloader, which verifies the md5 checksum."""
    from torchvision.datasets.utils import check_integrity, download_url

    raw_dir.mkdir(parents=True, exist_ok=True)
    target = raw_dir / filename
    if check_integrity(str(target), md5):
        return target
    try:
        download_url(url, str(raw_dir), filename=filename, md5=md5)
    except Exception as exc:  # network errors, and torchvision's own md5 refusal
        target.unlink(missing_ok=True)
        raise DatasetError(
            f"download of {url} failed ({' '.join(str(exc).split())[:160]}); fetch {filename} by hand and run "
            f"bench data prepare {name or 'DATASET'} --from {raw_dir / filename}") from None
    if not check_integrity(str(target), md5):
        target.unlink(missing_ok=True)
        raise DatasetError(f"{filename}: md5 checksum mismatch after download (expected {md5}); the download was corrupt, try again")
    return target
