"""Reading untrusted tensor files with the cost known before the data is read.

`open_tensor_file` parses only the file's table of contents — the safetensors header, or the
pickle of a torch.save zip with its storages memory-mapped — and returns the dtype and shape of
every tensor. The caller checks them, then `load` reads just the tensors (or rows) it accepts, so
memory follows what is accepted, not what a file claims. Nothing is ever unpickled with a general
unpickler: torch.load(weights_only=True) or our own safetensors reader. Before torch.load, the
pickle is scanned opcode by opcode without unpickling (`scan_pickle`): only what torch.save writes
for tensors (alone or in a dict with string keys), within bounds on size, opcodes and nesting, so
that unpickling it costs little.
"""
from __future__ import annotations

import json
import math
import pickletools
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
MAX_MEMBERS = 256  # a torch.save zip: a few records and one per storage
MAX_DIRECTORY_BYTES = MAX_MEMBERS * 512  # its central directory: names are short
MAX_PICKLE_BYTES = 1 << 20  # its data.pkl: about 100 bytes per tensor
MAX_PICKLE_OPS = 100_000
MAX_PICKLE_DEPTH = 12  # a dict of tensors is 4 deep
# What torch.save writes for tensors of the accepted dtypes (uint8, int8/16/32/64, float16,
# bfloat16, float32/64, bool), alone or in a dict, and for parameters.
PICKLE_GLOBALS = {"collections OrderedDict", "torch._utils _rebuild_tensor_v2", "torch._utils _rebuild_parameter",
                  *(f"torch {kind}Storage" for kind in
                    ("Byte", "Char", "Short", "Int", "Long", "Half", "BFloat16", "Float", "Double", "Bool"))}
_ATOMS = {"BININT", "BININT1", "BININT2", "LONG1", "BINFLOAT", "NONE", "NEWTRUE", "NEWFALSE"}
_EMPTY = {"EMPTY_TUPLE", "EMPTY_LIST", "EMPTY_DICT"}
_TUPLES = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}
_FILLS = {"APPEND": 1, "APPENDS": None, "SETITEM": 2, "SETITEMS": None}  # None: the items up to a MARK
_CALLABLE = object()  # an allowed global on the simulated stack of `scan_pickle`


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
    with path.open("rb") as f:
        try:
            end = zipfile._EndRecData(f)  # zipfile's own reader of the end record: the count, before the listing
        except OSError:  # shorter than an end record
            end = None
    if end is None:
        raise ValueError("not a torch.save zip archive (the legacy format is not accepted)")
    if end[zipfile._ECD_SIZE] > MAX_DIRECTORY_BYTES:  # what zipfile parses, whatever the count claims
        raise ValueError(f"a zip directory of {end[zipfile._ECD_SIZE]} bytes; torch.save of tensors writes a few KiB")
    if end[zipfile._ECD_ENTRIES_TOTAL] > MAX_MEMBERS:
        raise ValueError(f"a zip archive of {end[zipfile._ECD_ENTRIES_TOTAL]} members; torch.save of tensors "
                         f"writes far fewer than {MAX_MEMBERS}")
    size = path.stat().st_size
    with zipfile.ZipFile(path) as z:
        members = z.infolist()
        for member in members:
            if member.compress_type != zipfile.ZIP_STORED or member.file_size > size:
                raise ValueError(f"archive member '{one_line(member.filename, 60)}' is compressed")
        names = [m.filename for m in members]
        if not names or len(set(names)) != len(names):
            raise ValueError("an empty archive, or one that names a member twice")
        pickle_name = names[0].split("/")[0] + "/data.pkl"  # torch reads the pickle of the first member's folder
        if pickle_name not in names:
            raise ValueError(f"no {one_line(pickle_name, 60)} in the archive")
        data_pkl = z.getinfo(pickle_name)
        if max(data_pkl.file_size, data_pkl.compress_size) > MAX_PICKLE_BYTES:
            raise ValueError(f"data.pkl is larger than {MAX_PICKLE_BYTES >> 20} MiB")
        scan_pickle(z.read(pickle_name))
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


def scan_pickle(data: bytes) -> None:
    """Raise ValueError unless the pickle is what torch.save writes for tensors, alone or in a
    dict with string keys: read opcode by opcode, never unpickled. Each value on a simulated stack
    is (nesting depth, a string's text or _CALLABLE for an allowed global); a container is 1 + the
    depth of its deepest item, and a memo reference keeps its value's depth."""
    stack: list = []
    marks: list[int] = []  # where each open MARK is on the stack
    memo: dict = {}

    def pop():
        if len(stack) <= (marks[-1] if marks else 0):
            raise ValueError("a malformed pickle")
        return stack.pop()

    def pop_mark() -> list:
        if not marks:
            raise ValueError("a malformed pickle")
        at = marks.pop()
        items = stack[at:]
        del stack[at:]
        return items

    def push(depth: int, value=None):
        if depth > MAX_PICKLE_DEPTH:
            raise ValueError(f"the pickle nests values more than {MAX_PICKLE_DEPTH} deep")
        stack.append((depth, value))

    for count, (op, arg, _) in enumerate(pickletools.genops(data)):
        name = op.name
        if count >= MAX_PICKLE_OPS:
            raise ValueError(f"the pickle has more than {MAX_PICKLE_OPS} opcodes")
        if name in ("PROTO", "STOP"):
            continue
        if name == "MARK":
            marks.append(len(stack))
        elif name in _ATOMS:
            push(0)
        elif name == "BINUNICODE":
            push(0, arg)
        elif name in _EMPTY:
            push(1)
        elif name == "GLOBAL":
            if arg not in PICKLE_GLOBALS:
                raise ValueError(f"the pickle uses {one_line(arg, 80).replace(' ', '.')}, which torch.save of "
                                 f"tensors of the accepted dtypes does not")
            push(0, _CALLABLE)
        elif name in ("BINPUT", "LONG_BINPUT"):
            value = pop()
            stack.append(value)
            memo[arg] = value
        elif name in ("BINGET", "LONG_BINGET"):
            if arg not in memo:
                raise ValueError("a malformed pickle")
            stack.append(memo[arg])
        elif name == "TUPLE" or name in _TUPLES:
            items = pop_mark() if name == "TUPLE" else [pop() for _ in range(_TUPLES[name])]
            push(1 + max((depth for depth, _ in items), default=0))
        elif name == "BINPERSID":  # a storage: ('storage', its class, key, location, size)
            push(pop()[0])
        elif name == "REDUCE":
            (depth, _), (_, fn) = pop(), pop()
            if fn is not _CALLABLE:
                raise ValueError("the pickle calls something that is not a global")
            push(1 + depth)
        elif name in _FILLS:
            items = pop_mark() if _FILLS[name] is None else [pop() for _ in range(_FILLS[name])][::-1]
            if name.startswith("SET") and (len(items) % 2 or not all(isinstance(key, str) for _, key in items[::2])):
                raise ValueError("a dict key is not a string; use string keys ('images', 'labels')")
            depth, _ = pop()
            push(max(depth, 1 + max((d for d, _ in items), default=0)))
        else:
            raise ValueError(f"the pickle uses opcode {name}, which torch.save of tensors does not")
