"""photodigits: built deterministically from scikit-learn's data, cached like a download, and
held to the digest the protocol records."""
from dataclasses import replace

import pytest
import torch

from benchmark.cli import main
from benchmark.options import Options
from benchmark.protocol import load_protocol
from evaluator import data
from evaluator.data import _cache
from evaluator.data._digits import load_digits_splits
from evaluator.data._photodigits import COPIES, build_splits
from evaluator.errors import DatasetError


@pytest.fixture(scope="module")
def splits():
    return build_splits()


def test_build_is_deterministic_and_matches_the_protocol_digest(splits):
    again = build_splits()
    for split in ("train", "test"):
        assert torch.equal(splits[split][0], again[split][0]) and torch.equal(splits[split][1], again[split][1])
    digest = data.tensor_digest(*splits["train"], *splits["test"])
    assert digest == load_protocol().data_digests["photodigits"]


def test_shapes_balance_and_the_digits_split(splits):
    (tr_x, tr_y), (_, te_y) = splits["train"], splits["test"]
    assert tr_x.dtype == torch.uint8 and tuple(tr_x.shape[1:]) == (3, 8, 8)
    assert len(te_y) == 10 * 50 * COPIES["test"] and torch.bincount(te_y).tolist() == [100] * 10
    assert len(tr_y) == (1797 - 500) * COPIES["train"]
    assert len(load_digits_splits()[3]) * COPIES["test"] == len(te_y)  # the digits' split, each digit twice
    # colour: the channels differ (it is not a grey dataset) and backgrounds vary
    assert (tr_x[:, 0].float() - tr_x[:, 1].float()).abs().mean() > 5
    assert tr_x.float().std(dim=(1, 2, 3)).std() > 5


def test_loading_builds_the_cache_once(tmp_path):
    ds = data.load_dataset("photodigits", tmp_path, need_train=True)
    where = data.cache_dir(tmp_path, "photodigits")
    assert (where / "train.safetensors").is_file() and ds.classes[0] == "zero"
    stamp = (where / "test.safetensors").stat().st_mtime_ns
    again = data.load_dataset("photodigits", tmp_path)
    assert (where / "test.safetensors").stat().st_mtime_ns == stamp  # read, not rebuilt
    assert torch.equal(again.test_images, ds.test_images)
    with pytest.raises(DatasetError, match="drop --from"):
        data.prepare_dataset("photodigits", tmp_path, source=tmp_path)


def test_data_other_than_the_protocol_digest_are_refused(project):
    ds = data.load_dataset("photodigits", project / "datasets", need_train=True)
    opts = Options(load_protocol(), root=project)
    assert opts.dataset("photodigits").test_digest == ds.test_digest
    images = ds.train_images.clone()
    images[0, 0, 0, 0] ^= 1  # one grey level of one pixel
    _cache.write_split(data.cache_dir(project / "datasets", "photodigits"), "train", images, ds.train_labels)
    with pytest.raises(DatasetError, match=f"differ from protocol {load_protocol().label}'s"):
        opts.dataset("photodigits")
    (project / "submissions").mkdir(exist_ok=True)  # bench distill reads the data the same way: refused too
    assert main(["distill", "herding", "--out", str(project / "submissions"), "--root", str(project)]) == 2
    other = replace(load_protocol(), data_digests={})
    assert Options(other, root=project).dataset("photodigits").train_images[0, 0, 0, 0] == images[0, 0, 0, 0]
