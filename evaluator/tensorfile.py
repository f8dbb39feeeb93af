"""Reading untrusted tensor files with the cost known before the data is read.

`open_tensor_file` parses only the file's table of contents — the safetensors header, or the
pickle of a torch.save zip with its storages memory-mapped — and returns the dtype and shape of
every tensor. The caller checks them, then `load` reads just the tensors (or rows) it accepts, so
memory follows what is accepted, not what a file claims. Nothing is ever unpickled with a general
unpickler: torch.load(weights_only=True) or our own safetensors reader.
"""
from __future__ import annotations

import json
import math
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .errors import ImageFileError, one_line

SUFFIXES = (".pt", ".pth", ".safetensors")
MAX_HEADER_BYTES = 1 << 20  # an image file's table of contents is a few hundred bytes
SAFETENSORS_DTYPES = {"U8": torch.uint8, "I8": torch.int8, "I16": torch.int16, "I32": torch.int32,
                      "I64": torch.int64, "F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32,
                      "F64": torch.float64, "BOOL": torch.bool}


@dataclass(frozen=True)
class Entry:
    dtype: torch.dtype
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * torch.empty((), dtype=self.dtype).element_size()


class TensorFile:
    """The table of contents of a tensor file; `entries` is {name: Entry, or None for a value that
    is not a tensor}, `top` the kind of the top-level object ("tensor" for the official format,
    "dict", or another type's name)."""

    def __init__(self, path: Path, top: str, entries: dict[str, Entry | None], reader):
        self.path, self.top, self.entries, self._reader = path, top, entries, reader

    def load(self, name: str, rows: Tensor | None = None) -> Tensor:
        """The tensor (or the given rows of it), read now; a private copy in memory."""
        try:
            return self._reader(name, rows)
        except Exception as exc:  # a storage that does not match its description
            raise refused(self.path, exc) from None


def refused(path: Path, exc: BaseException | str) -> ImageFileError:
    text = str(exc).strip()
    reason = one_line(text.splitlines()[0] if text else type(exc).__name__, 160)
    return ImageFileError(f"{path}: refused to load ({reason}); save only tensors with torch.save or use .safetensors")


def open_tensor_file(path: Path) -> TensorFile:
    path = Path(path)
    if path.is_symlink() or not path.is_file():
        what = "a symbolic link" if path.is_symlink() else "not a regular file" if path.exists() else "file not found"
        raise ImageFileError(f"{path}: {what}; put the tensor file itself there")
    if path.suffix not in SUFFIXES:
        raise ImageFileError(f"{path}: unsupported file type '{path.suffix}'; save with torch.save (.pt) or as .safetensors")
    try:
        return _open_safetensors(path) if path.suffix == ".safetensors" else _open_torch(path)
    except ImageFileError:
        raise
    except Exception as exc:  # unpickling refusals, truncated zips, bad headers
        raise refused(path, exc) from None


def _open_safetensors(path: Path) -> TensorFile:
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError("too short for a safetensors header")
        (length,) = struct.unpack("<Q", head)
        if length > min(MAX_HEADER_BYTES, size - 8):
            raise ValueError(f"header of {length} bytes")
        header = json.loads(f.read(length))
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    base, entries, spans = 8 + length, {}, {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(spec, dict) or spec.get("dtype") not in SAFETENSORS_DTYPES:
            raise ValueError(f"tensor '{one_line(name, 40)}' has an unknown dtype")
        shape, (start, end) = tuple(int(d) for d in spec["shape"]), (int(v) for v in spec["data_offsets"])
        entry = Entry(SAFETENSORS_DTYPES[spec["dtype"]], shape)
        if min(shape, default=0) < 0 or not 0 <= start <= end <= size - base or end - start != entry.nbytes:
            raise ValueError(f"tensor '{one_line(name, 40)}' does not fit in the file")
        entries[str(name)], spans[str(name)] = entry, base + start

    def read(name: str, rows: Tensor | None) -> Tensor:
        entry = entries[name]
        if entry.nbytes == 0:
            return torch.empty(entry.shape, dtype=entry.dtype)
        row_bytes = entry.nbytes // max(entry.shape[0], 1) if entry.shape else entry.nbytes
        raw = np.memmap(path, dtype=np.uint8, mode="r", offset=spans[name],
                        shape=(entry.shape[0] if entry.shape else 1, row_bytes))
        picked = np.array(raw if rows is None else raw[rows.numpy()])  # a copy of only what is asked
        out_shape = entry.shape if rows is None else (len(rows), *entry.shape[1:])
        return torch.from_numpy(picked).view(entry.dtype).reshape(out_shape)

    return TensorFile(path, "dict", entries, read)


def _open_torch(path: Path) -> TensorFile:
    if not zipfile.is_zipfile(path):
        raise ValueError("not a torch.save zip archive (the legacy format is not accepted)")
    size = path.stat().st_size
    with zipfile.ZipFile(path) as z:
        for member in z.infolist():
            if member.compress_type != zipfile.ZIP_STORED or member.file_size > size:
                raise ValueError(f"archive member '{one_line(member.filename, 60)}' is compressed")
    obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)  # storages stay on disk
    if isinstance(obj, Tensor):
        tensors, top = {"": obj}, "tensor"
    elif isinstance(obj, dict):
        tensors, top = {str(k): v if isinstance(v, Tensor) else None for k, v in obj.items()}, "dict"
    else:
        return TensorFile(path, type(obj).__name__, {}, None)
    for name, t in tensors.items():
        if t is not None and t.untyped_storage().nbytes() > size:
            raise ValueError(f"tensor '{one_line(name, 40)}' claims more bytes than the file holds")
    entries = {n: Entry(t.dtype, tuple(t.shape)) if t is not None else None for n, t in tensors.items()}

    def read(name: str, rows: Tensor | None) -> Tensor:
        t = tensors[name]
        return (t if rows is None else t[rows]).clone()

    return TensorFile(path, top, entries, read)
