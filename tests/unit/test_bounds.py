"""Everything a team controls costs a bounded amount before any work, and team identities are
unambiguous: folder walks, file hashes, torch.save pickles, YAML, team names, empty shards, and
the generated images of a distributed launch."""
import io
import json
import os
import struct
import time
import zipfile

import pytest
import torch
from conftest import ROOT, add_team
from safetensors.torch import save_file

from benchmark import distributed, shards, submission
from benchmark.errors import SubmissionError
from benchmark.options import Options, Overrides
from benchmark.protocol import load_protocol
from benchmark.submission import (
    combined_hash,
    current_hashes,
    file_hashes,
    parse_spec,
    unreadable_by_others,
)
from benchmark.tracks import Task
from benchmark.yamlsafe import YamlError, load_yaml_text
from evaluator.data import load_dataset
from evaluator.errors import ImageFileError
from evaluator.files import load_image_set
from evaluator.tensorfile import open_tensor_file


def refusal(folder) -> str:
    """The one-line SubmissionError of walking a folder (hashes, and the sandbox's readability check)."""
    with pytest.raises(SubmissionError) as info:
        file_hashes(folder)
    with pytest.raises(SubmissionError):
        unreadable_by_others(folder)
    message = str(info.value)
    assert "\n" not in message
    return message


# -- 1. the folder walk is bounded -----------------------------------------------------------------

def test_a_folder_nested_1200_deep_is_refused_without_recursing(project):
    folder = add_team(project, "deep")
    try:
        for level in range(1, 1201):  # os.makedirs would recurse as deep
            os.mkdir(folder / "/".join(["a"] * level))
        assert "folders nested more than 16 levels deep; flatten the folder" in refusal(folder)
    finally:
        for level in range(1200, 0, -1):  # and so would shutil.rmtree
            if (folder / "/".join(["a"] * level)).exists():
                os.rmdir(folder / "/".join(["a"] * level))


def test_names_too_long_for_a_path_are_refused_before_the_path_is_built(project):
    folder = add_team(project, "long")
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(17):  # 17 x 251 characters: longer than any path the kernel accepts
        os.mkdir("d" * 250, dir_fd=fd)
        inner = os.open("d" * 250, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.close(fd)
    assert "a path of 752 characters; at most 512 (relative to the team folder): shorten the names" in refusal(folder)


def test_more_than_10000_entries_are_refused(project):
    folder = add_team(project, "many")
    (folder / "sub").mkdir()
    for i in range(10_000):
        (folder / "sub" / f"{i}").touch()
    assert "more than 10000 files and folders" in refusal(folder)


@pytest.mark.parametrize("how,fragment", [
    ("64 GiB sparse", "64 GiB long; at most 16 GiB per file"),
    ("100 MiB sparse", "a sparse file (a file on a compressing file system looks the same)"),
    ("over the total", "the folder's files come to more than"),
])
def test_big_and_sparse_files_are_refused_before_any_file_is_hashed(project, monkeypatch, how, fragment):
    folder = add_team(project, "big")
    (folder / "weights").mkdir()
    big = folder / "weights" / "model.bin"
    if how == "over the total":  # real bytes: the limits scaled down
        monkeypatch.setattr(submission, "MAX_TOTAL_BYTES", 3 << 20)
        for i in range(2):
            (folder / "weights" / f"part{i}.bin").write_bytes(os.urandom(2 << 20))
    else:
        with big.open("wb") as f:
            f.truncate(64 << 30 if how.startswith("64") else 100 << 20)
    hashed = []
    monkeypatch.setattr(submission, "file_sha256", lambda path: hashed.append(path) or "0" * 64)
    assert fragment in refusal(folder)
    assert hashed == []


# -- 2. hashes: cached on disk, and a stat-only mode --------------------------------------------------

def test_hashes_are_cached_by_file_identity_and_can_be_asked_without_reading(project, monkeypatch):
    a, b = add_team(project, "a"), add_team(project, "b", files={"digits.pt": b"other"})
    (add_team(project, "linked", files={}) / "x.pt").symlink_to(a / "digits.safetensors")
    expected = {"a": combined_hash(file_hashes(a)), "b": combined_hash(file_hashes(b)), "linked": ""}
    assert current_hashes(project) == expected
    cache = project / "leaderboard" / ".runs" / "file-hashes.json"
    assert len(json.loads(cache.read_text())) == 4  # each file of a and b

    def no_reading(path):
        raise AssertionError(f"{path} was read")

    monkeypatch.setattr(submission, "_DIGESTS", {})  # a new process: only the cache on disk
    monkeypatch.setattr(submission, "file_sha256", no_reading)
    assert current_hashes(project, hash_new_files=False) == expected
    assert current_hashes(project) == expected
    (b / "notes.txt").write_text("new")
    assert current_hashes(project, hash_new_files=False) == {**expected, "b": None}  # unknown, nothing read
    cache.write_text("{damaged")
    assert current_hashes(project, hash_new_files=False) == {**expected, "a": None, "b": None}
    monkeypatch.undo()
    assert current_hashes(project) == {**expected, "b": combined_hash(file_hashes(b))}
    assert len(json.loads(cache.read_text())) == 5


# -- 3. torch.save pickles are scanned before they are unpickled ------------------------------------

def rewritten_pt(path, obj, edit):
    """torch.save(obj) with its data.pkl passed through edit(bytes) -> bytes."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            dst.writestr(item, edit(data) if item.filename.endswith("/data.pkl") else data)
    return path


def nested_key(pkl: bytes, levels: int) -> bytes:
    """One more dict item whose key is t = (); t = (t, t) `levels` times, built with memo
    references: a few bytes per level, 2**levels steps to hash."""
    assert pkl.endswith(b"u.")  # SETITEMS, STOP: the dict's items are still open
    key = b")r" + struct.pack("<I", 1000)  # EMPTY_TUPLE, LONG_BINPUT 1000
    for i in range(levels):  # LONG_BINGET i, TUPLE2, LONG_BINPUT i + 1
        key += b"j" + struct.pack("<I", 1000 + i) + b"\x86r" + struct.pack("<I", 1001 + i)
    return pkl[:-2] + key + b"K\x00u."  # the value 0


def images_dict(dtype=torch.uint8):
    return {"images": torch.zeros(10, 3, 8, 8, dtype=dtype), "labels": torch.arange(10)}


def test_a_pickle_key_nested_40_deep_is_refused_in_under_a_second(tmp_path):
    path = rewritten_pt(tmp_path / "digits.pt", images_dict(), lambda pkl: nested_key(pkl, 40))
    assert path.stat().st_size < 22_000
    started = time.monotonic()
    with pytest.raises(ImageFileError) as info:
        open_tensor_file(path)
    assert time.monotonic() - started < 1
    assert "\n" not in str(info.value) and "nests values more than 12 deep" in str(info.value)


@pytest.mark.parametrize("make,fragment", [
    (lambda p: torch.save({1: torch.zeros(1), **images_dict()}, p), "a dict key is not a string"),
    (lambda p: torch.save({f"t{i}": torch.zeros(1) for i in range(300)}, p), "a zip archive of 306 members"),
    (lambda p: torch.save({"notes": "x" * (2 << 20), **images_dict()}, p), "data.pkl is larger than 1 MiB"),
    (lambda p: torch.save({"s": {1, 2}, **images_dict()}, p), "the pickle uses __builtin__.set"),
    (lambda p: torch.save(torch.zeros(2, dtype=torch.uint16), p), "the pickle uses torch._utils._rebuild_tensor_v3"),
    (lambda p: rewritten_pt(p, images_dict(), lambda pkl: pkl[:2] + b"N0" + pkl[2:]), "opcode POP"),
], ids=["int key", "members", "pickle size", "set", "uint16", "opcode"])
def test_pickles_outside_the_bounds_are_refused(tmp_path, make, fragment):
    make(tmp_path / "x.pt")
    with pytest.raises(ImageFileError, match="refused to load") as info:
        open_tensor_file(tmp_path / "x.pt")
    assert fragment in str(info.value) and "\n" not in str(info.value)


ACCEPTED = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16, torch.bfloat16,
            torch.float32, torch.float64, torch.bool]


@pytest.mark.parametrize("dtype", ACCEPTED, ids=str)
def test_tensors_of_every_accepted_dtype_still_load(tmp_path, dtype):
    x = (torch.arange(2 * 3 * 8 * 8) % 2).reshape(2, 3, 8, 8).to(dtype)
    torch.save(x, tmp_path / "a.pt")
    torch.save({"images": x, "labels": torch.arange(2), "ipc": 1, "note": "n", "more": [1.5, None, True]},
               tmp_path / "b.pt")
    assert torch.equal(open_tensor_file(tmp_path / "a.pt").load(""), x)
    assert torch.equal(open_tensor_file(tmp_path / "b.pt").load("images"), x)
    if dtype in (torch.uint8, torch.float32):
        torch.save({"images": x, "labels": torch.arange(2) % 2}, tmp_path / "c.pt")
        assert load_image_set(tmp_path / "c.pt", 2, 8, 10).images.shape == (2, 3, 8, 8)


def test_every_shipped_tensor_file_still_loads():
    files = [p for s in ("*.pt", "*.pth", "*.safetensors") for p in (ROOT / "submissions").rglob(s)]
    assert files
    for path in files:
        assert open_tensor_file(path).entries


# -- 4. YAML: duplicate keys and aliases ------------------------------------------------------------

SPEC = "team: t\nmethod: m\ntrack: fixed-ipc\ndatasets: [digits]\n"


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path):
    with pytest.raises(SubmissionError) as info:
        parse_spec(add_team(tmp_path, "t", files={}, spec=SPEC + "method: other\n"))
    assert str(info.value).endswith("submission.yaml: key 'method' appears twice (lines 2 and 5); keep one")


BOMB = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
    f"{k}: &{k} [{', '.join(['*' + p] * 9)}]\n" for p, k in zip("abcdefgh", "bcdefghi"))


def test_yaml_aliases_are_refused_at_once(tmp_path):
    started = time.monotonic()
    with pytest.raises(YamlError, match=r"^bomb.yaml: anchors and aliases \(&name, \*name\) are not accepted "
                                        r"\(line 1\); write the value out$"):
        load_yaml_text(BOMB, "bomb.yaml")
    assert time.monotonic() - started < 0.1
    with pytest.raises(SubmissionError, match="anchors and aliases"):
        parse_spec(add_team(tmp_path, "t", files={}, spec=SPEC + "notes: &n x\ncontact: *n\n"))
    assert load_yaml_text("a: 1\nb: [1, 2]\n", "ok.yaml") == {"a": 1, "b": [1, 2]}


# -- 6. an empty shard counts as no images -----------------------------------------------------------

def shard(folder, i, n, dtype=torch.uint8):
    path = folder / f"shard-{i:05d}.safetensors"
    save_file({"images": torch.zeros(n, 3, 8, 8, dtype=dtype), "labels": torch.arange(n) % 10}, str(path))
    return path


def test_a_shard_of_zero_images_is_skipped_and_the_others_count(project, tmp_path):
    ds = load_dataset("digits", project / "datasets")
    found = (shard(tmp_path, 0, 0), shard(tmp_path, 1, 20), shard(tmp_path, 2, 0), shard(tmp_path, 3, 10))
    collected = shards.collect(found, ds, max_ipc=50, max_images=1000)
    assert (collected.ipc, collected.generated, collected.dropped, len(collected.images)) == (3, 30, 0, 30)
    with pytest.raises(SubmissionError, match="images have dtype torch.float32"):  # its other checks still apply
        shards.collect((shard(tmp_path, 4, 0, torch.float32), found[1]), ds, max_ipc=50, max_images=1000)
    with pytest.raises(SubmissionError, match="no image of class 0"):
        shards.collect((found[0],), ds, max_ipc=50, max_images=1000)
    save_file({"images": torch.zeros(0, 3, 8, 8, dtype=torch.uint8), "labels": torch.zeros(0, dtype=torch.int64)},
              str(tmp_path / "digits.safetensors"))
    with pytest.raises(ImageFileError, match="holds no images"):  # a fixed-IPC file still needs images
        load_image_set(tmp_path / "digits.safetensors", 10, 8, 100)


# -- 7. a distributed launch removes only its own generated images ----------------------------------

class OneProcess:
    """accelerate's PartialState of a launch of one process, without a launch."""
    process_index, num_processes, is_main_process, device = 0, 1, True, "cpu"

    def wait_for_everyone(self):
        pass

    def split_between_processes(self, items):
        import contextlib

        return contextlib.nullcontext(items)


def test_a_launch_removes_only_the_generated_folders_of_its_own_tasks(project, monkeypatch):
    opts = Options(protocol=load_protocol(), overrides=Overrides(runs=1, epochs=1), root=project)
    identity = dict(team="gen", method="m", track="generative", dataset="digits", submission_sha256="")
    mine = Task("gen/digits", identity, lambda: [], generates=True)  # [] : every result already exists
    other_launch = project / "leaderboard" / ".runs" / "generated" / "0123456789abcdef"
    other_launch.mkdir(parents=True)
    (other_launch / "prepared.json").write_text('{"kind": "skipped"}')
    monkeypatch.setattr(distributed.Workers, "broadcast", lambda self, obj: obj)
    assert distributed.execute(opts, [mine], distributed.Workers(OneProcess())) == []
    assert not distributed._shared_dir(opts, mine).exists()
    assert (other_launch / "prepared.json").is_file()


def test_a_zip_whose_end_record_understates_its_members_is_refused_before_its_listing(tmp_path):
    """The member count of the end record is only a claim; the directory zipfile would parse is
    bounded by its size."""
    from evaluator.tensorfile import open_tensor_file

    path = tmp_path / "digits.pt"
    buf = io.BytesIO()
    torch.save(torch.zeros(100, 3, 8, 8), buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src, zipfile.ZipFile(path, "w") as out:
        for info in src.infolist():
            out.writestr(info, src.read(info))
        for i in range(3000):
            out.writestr(f"archive/extra/{i}", b"")
    data = bytearray(path.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 7, 7)  # claim 7 members
    path.write_bytes(bytes(data))
    started = time.perf_counter()
    with pytest.raises(ImageFileError, match="zip directory of"):
        open_tensor_file(path)
    assert time.perf_counter() - started < 1
