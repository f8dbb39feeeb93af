"""Fixtures: tiny datasets written in the real on-disk formats of the original distributions."""
from __future__ import annotations

import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from evaluator.data import _classnames
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
