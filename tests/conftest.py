"""Fixtures and helpers for the three tiers of tests, one folder each:

- unit/: one module at a time, in this process: no subprocess (the guard below fails a test that
  starts one), no sandbox, no full-length training. `make test-fast` runs them, in under a minute.
- integration/: the pipeline in this process through `bench`'s entry point, on digits with the
  quick preset: submission folders, datasets, records, the page. May run git (provenance) and a
  C++ compiler (torch.compile); starts no sandbox and no other `bench`.
- e2e/: what a user runs: sandboxed generators, real `bench` and torchrun processes (concurrent,
  killed, resumed) and the full protocol.

The datasets are tiny, written in the real on-disk formats of the original distributions."""
from __future__ import annotations

import importlib.util
import io
import os
import pickle
import subprocess
import sys
import tarfile
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate import PartialState
from PIL import Image

from evaluator import classnames as _classnames
from evaluator.data import load_dataset
from evaluator.normalize import normalize

ROOT = Path(__file__).resolve().parents[1]


def _pickle_bytes(obj) -> bytes:
    return pickle.dumps(obj, protocol=2)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _cifar_batch(rng, n: int, num_classes: int, labels_key: str) -> dict:
    labels = [i % num_classes for i in range(n)]
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    return {"data": data, labels_key: labels, "batch_label": "fixture"}


@pytest.fixture
def cifar100_archive(tmp_path: Path) -> Path:
    """cifar-100-python.tar.gz with 2 train and 1 test image per class."""
    rng = np.random.default_rng(0)
    path = tmp_path / "cifar-100-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        _add_bytes(tar, "cifar-100-python/train", _pickle_bytes(_cifar_batch(rng, 200, 100, "fine_labels")))
        _add_bytes(tar, "cifar-100-python/test", _pickle_bytes(_cifar_batch(rng, 100, 100, "fine_labels")))
        _add_bytes(tar, "cifar-100-python/meta", _pickle_bytes(
            {"fine_label_names": list(_classnames.CIFAR100), "coarse_label_names": ["x"] * 20}))
    return path


@pytest.fixture
def cifar10_archive(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for i in range(1, 6):
            _add_bytes(tar, f"cifar-10-batches-py/data_batch_{i}", _pickle_bytes(_cifar_batch(rng, 20, 10, "labels")))
        _add_bytes(tar, "cifar-10-batches-py/test_batch", _pickle_bytes(_cifar_batch(rng, 10, 10, "labels")))
        _add_bytes(tar, "cifar-10-batches-py/batches.meta", _pickle_bytes({"label_names": list(_classnames.CIFAR10)}))
    return path


def _jpeg(rng, mode: str = "RGB") -> bytes:
    arr = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    img = Image.fromarray(arr).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="JPEG")
    return buf.getvalue()


TINY_WNIDS = [f"n{10000000 + 7919 * i:08d}" for i in range(200)]


@pytest.fixture
def tinyimagenet_zip(tmp_path: Path) -> Path:
    """tiny-imagenet-200.zip: 200 classes, 1 train JPEG each (one greyscale), 4 val images."""
    rng = np.random.default_rng(2)
    wnids = list(reversed(TINY_WNIDS))  # wnids.txt is not sorted in the real archive either
    path = tmp_path / "tiny-imagenet-200.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("tiny-imagenet-200/wnids.txt", "\n".join(wnids) + "\n")
        words = [f"{w}\tthing {i}, other name" for i, w in enumerate(TINY_WNIDS)] + ["n99999999\tunused"]
        z.writestr("tiny-imagenet-200/words.txt", "\n".join(words) + "\n")
        for i, w in enumerate(wnids):
            z.writestr(f"tiny-imagenet-200/train/{w}/{w}_boxes.txt", f"{w}_0.JPEG\t0\t0\t63\t63\n")
            z.writestr(f"tiny-imagenet-200/train/{w}/images/{w}_0.JPEG", _jpeg(rng, "L" if i == 0 else "RGB"))
        ann = []
        for k, w in enumerate(TINY_WNIDS[:4]):
            z.writestr(f"tiny-imagenet-200/val/images/val_{k}.JPEG", _jpeg(rng))
            ann.append(f"val_{k}.JPEG\t{w}\t0\t0\t63\t63")
        z.writestr("tiny-imagenet-200/val/val_annotations.txt", "\n".join(ann) + "\n")
        z.writestr("tiny-imagenet-200/test/images/test_0.JPEG", _jpeg(rng))
    return path


def make_reference(path: Path, images_uint8: torch.Tensor, labels: torch.Tensor, mean, std) -> Path:
    """A challenge reference_data/<name>_test.pt: pre-normalised floats and labels."""
    torch.save({"images_val": normalize(images_uint8, mean, std), "labels_val": labels}, path)
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty project root (datasets/manifest.yaml copied from the repository)."""
    root = tmp_path / "project"
    (root / "datasets").mkdir(parents=True)
    (root / "datasets" / "manifest.yaml").write_text((ROOT / "datasets" / "manifest.yaml").read_text())
    return root


EXAMPLE = ROOT / "submissions" / "random_ipc10"


def add_team(root: Path, team: str, files: dict | None = None, spec: str | None = None) -> Path:
    """A submission folder: by default a copy of the shipped random IPC-10 digits example."""
    folder = root / "submissions" / team
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "submission.yaml").write_text(spec if spec is not None else
                                            f"team: {team}\nmethod: random copy\ntrack: fixed-ipc\ndatasets: [digits]\n")
    if files is None:
        files = {"digits.safetensors": (EXAMPLE / "digits.safetensors").read_bytes()}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def read_results(root: Path) -> list[dict]:
    import csv

    path = root / "leaderboard" / "results.csv"
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


GEN_PRELUDE = '''
import json, os, sys, time
from pathlib import Path
from benchmark.genkit import ShardWriter, parse_args, time_left

def write_valid_shard(args, per_class=2):
    import torch
    n = per_class * args.num_classes
    labels = torch.arange(n) % args.num_classes
    images = torch.randint(0, 256, (n, 3, args.resolution, args.resolution), dtype=torch.uint8)
    return ShardWriter(args.out, args.resolution).write(images, labels)

def extra(p):
    p.add_argument("--probe", action="append", default=[])
'''


def add_generator(root: Path, team: str, body: str, args: list[str] | None = None) -> Path:
    """A generative submission whose generate.py runs GEN_PRELUDE then `body` (args parsed)."""
    import yaml

    folder = root / "submissions" / team
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"team": team, "method": "test generator", "track": "generative", "datasets": ["digits"]}
    if args:
        spec["args"] = args
    (folder / "submission.yaml").write_text(yaml.safe_dump(spec))
    (folder / "generate.py").write_text(GEN_PRELUDE + "\nargs = parse_args(extra=extra)\n" + body)
    return folder


def train_config(epochs: int, **kw):
    """A TrainConfig with the released protocol's recipe and precision (tests override what they study)."""
    from benchmark.protocol import load_protocol
    from evaluator.train import TrainConfig

    p = load_protocol()
    kw.setdefault("precision", p.precision)
    return TrainConfig(recipe=kw.pop("recipe", p.recipe), epochs=epochs, **kw)


@pytest.fixture(autouse=True)
def no_signing_key(tmp_path_factory, monkeypatch):
    """Tests never see an organiser key of the machine they run on; those about signing set one."""
    monkeypatch.delenv("BENCH_SIGNING_KEY", raising=False)
    monkeypatch.delenv("BENCH_SIGNING_KEY_FILE", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config")))


# -- helpers shared by the tiers -------------------------------------------------------------------

# One run of 2 epochs: the pipeline, not a score; a device busy with other work (a shared test
# machine) is reported, not waited for.
QUICK = ["--preset", "quick", "--device", "cpu", "--wait", "0"]


def submit(project: Path, team: str, *extra) -> int:
    """`bench submit TEAM` in this process, quick preset."""
    from benchmark.cli import main

    return main(["submit", team, "--root", str(project), *QUICK, *extra])


def board(project: Path) -> str:
    """The generated leaderboard page."""
    return (project / "leaderboard" / "LEADERBOARD.md").read_text()


KEY = "k" * 40  # an organiser's signing key, for the tests about signed rows


def released_protocol_text() -> str:
    """The current released protocol file, as text."""
    from benchmark.protocol import FOLDER, load_protocol

    return (FOLDER / f"v{load_protocol().version}.yaml").read_text()


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def digits_ipc(ipc=10, seed=0):
    ds = load_dataset("digits", Path("unused"), need_train=True)
    g = torch.Generator().manual_seed(seed)
    idx = torch.cat([torch.nonzero(ds.train_labels == c).flatten()[:40][torch.randperm(40, generator=g)[:ipc]]
                     for c in range(10)])
    return ds, ds.normalize(ds.train_images[idx]), ds.train_labels[idx]


class FakeState:
    """accelerate's PartialState as process `rank` of `world` would see it, without a launch;
    the split is accelerate's own code."""

    def __init__(self, rank, world):
        self.process_index, self.num_processes = rank, world
        self.is_main_process, self.device = rank == 0, "cpu"
        self.split_between_processes = types.MethodType(PartialState.split_between_processes, self)

    def wait_for_everyone(self):
        pass


TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(config, items):
    """Each test is marked with its tier (its folder), so `-m "not e2e"` selects by tier too."""
    for item in items:
        tier = Path(item.fspath).parent.name
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: tests live in one of tests/{{{','.join(TIERS)}}}/")
        item.add_marker(getattr(pytest.mark, tier))


def _no_process(*args, **kwargs):
    raise AssertionError("a unit test started a process; it belongs in tests/integration or tests/e2e")


@pytest.fixture(autouse=True)
def unit_tests_start_no_process(request, monkeypatch):
    """In tests/unit, starting a process of any kind fails the test."""
    if request.node.get_closest_marker("unit") is None:
        return
    monkeypatch.setattr(subprocess.Popen, "__init__", _no_process)
    for name in ("system", "fork", "forkpty", "posix_spawn", "posix_spawnp"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, _no_process)
