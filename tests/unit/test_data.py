"""Dataset loaders on tiny fixtures in the real on-disk formats."""
import hashlib
import tarfile

import pytest
import torch
import yaml
from conftest import TINY_WNIDS, make_reference

from evaluator import data as ds
from evaluator import classnames as _classnames
from evaluator.errors import DatasetError


def test_digits_is_embedded_stratified_and_matches_its_statistics(tmp_path):
    d = ds.load_dataset("digits", tmp_path, need_train=True)
    assert d.train_images.shape == (1297, 3, 8, 8) and d.test_images.shape == (500, 3, 8, 8)
    assert d.train_images.dtype == torch.uint8 and torch.equal(d.train_images[:, 0], d.train_images[:, 2])
    assert torch.bincount(d.test_labels).tolist() == [50] * 10
    assert d.classes[0] == "zero" and len(d.classes) == 10
    x = d.train_images.float() / 255
    assert x.mean().item() == pytest.approx(d.info.mean[0], abs=1e-3)
    assert x.std().item() == pytest.approx(d.info.std[0], abs=1e-3)
    again = ds.load_dataset("digits", tmp_path, need_train=True)
    assert torch.equal(again.test_images, d.test_images)  # the split is fixed


@pytest.mark.parametrize("unpack", [False, True])
def test_cifar100_from_archive_or_folder(project, cifar100_archive, tmp_path, unpack):
    source = cifar100_archive
    if unpack:
        source = tmp_path / "unpacked"
        with tarfile.open(cifar100_archive) as tar:
            tar.extractall(source, filter="data")
    line = ds.prepare_dataset("cifar100", project / "datasets", source)
    assert "200 train and 100 test" in line
    d = ds.load_dataset("cifar100", project / "datasets", need_train=True)
    assert d.train_images.shape == (200, 3, 32, 32) and d.train_images.dtype == torch.uint8
    assert d.classes[:4] == ("apple", "aquarium_fish", "baby", "bear") and len(d.classes) == 100
    assert d.test_labels.tolist() == list(range(100))
    assert not list((project / "datasets" / "cache" / "cifar100").glob("*.tmp"))


def test_cifar100_pixels_are_read_in_channel_major_order(project, cifar100_archive):
    import pickle

    with tarfile.open(cifar100_archive) as tar:
        raw = pickle.loads(tar.extractfile("cifar-100-python/train").read(), encoding="latin1")
    ds.prepare_dataset("cifar100", project / "datasets", cifar100_archive)
    d = ds.load_dataset("cifar100", project / "datasets", need_train=True)
    first = raw["data"][0]
    assert d.train_images[0, 0, 0, :4].tolist() == first[:4].tolist()  # red plane first
    assert d.train_images[0, 1, 0, 0].item() == first[1024]


def test_cifar10_from_archive(project, cifar10_archive):
    ds.prepare_dataset("cifar10", project / "datasets", cifar10_archive)
    d = ds.load_dataset("cifar10", project / "datasets", need_train=True)
    assert len(d.train_labels) == 100 and len(d.test_labels) == 10 and d.classes[0] == "airplane"


def test_tinyimagenet_from_zip_sorted_wnids_and_names(project, tinyimagenet_zip):
    ds.prepare_dataset("tinyimagenet", project / "datasets", tinyimagenet_zip)
    d = ds.load_dataset("tinyimagenet", project / "datasets", need_train=True)
    assert d.train_images.shape == (200, 3, 64, 64)
    assert d.meta["wnids"] == sorted(TINY_WNIDS)
    assert d.classes[0] == "thing 0" and d.classes[199] == "thing 199"  # first synonym of words.txt
    assert sorted(d.train_labels.tolist()) == list(range(200))
    assert d.test_labels.tolist() == [0, 1, 2, 3]  # val annotations map through the sorted wnids


def test_prepare_rejects_a_foreign_archive(project, cifar10_archive):
    with pytest.raises(DatasetError, match="missing"):
        ds.prepare_dataset("cifar100", project / "datasets", cifar10_archive)


def test_reference_import_round_trips_and_evaluate_uses_it(project, tmp_path):
    info = ds.get_info("cifar100")
    images = torch.randint(0, 256, (300, 3, 32, 32), dtype=torch.uint8)
    labels = torch.arange(300) % 100
    ref = make_reference(tmp_path / "cifar100_test.pt", images, labels, info.mean, info.std)
    line = ds.prepare_dataset("cifar100", project / "datasets", ref)
    assert "imported 300" in line
    d = ds.load_dataset("cifar100", project / "datasets")
    assert torch.equal(d.test_images, images) and torch.equal(d.test_labels, labels)
    assert d.train_images is None and d.classes == _classnames.CIFAR100
    with pytest.raises(DatasetError, match="not prepared"):
        ds.load_dataset("cifar100", project / "datasets", need_train=True)
    x, y = ds.read_reference_test(ref)
    assert ds.match_reference(x, y).name == "cifar100"


def test_reference_with_wrong_normalisation_is_rejected(project, tmp_path):
    images = torch.randint(0, 256, (100, 3, 32, 32), dtype=torch.uint8)
    ref = make_reference(tmp_path / "ref.pt", images, torch.arange(100), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    with pytest.raises(DatasetError, match="not uint8 images normalised with the cifar100 statistics"):
        ds.import_reference("cifar100", ref, project / "datasets")


def test_reference_file_shape_is_checked(tmp_path):
    torch.save({"images": torch.zeros(2, 3, 32, 32)}, tmp_path / "bad.pt")
    with pytest.raises(DatasetError, match="images_val"):
        ds.read_reference_test(tmp_path / "bad.pt")


def test_missing_dataset_names_the_fetch_command(project):
    with pytest.raises(DatasetError) as info:
        ds.load_dataset("tinyimagenet", project / "datasets")
    assert "bench data download tinyimagenet" in str(info.value) and "\n" not in str(info.value)


def test_unknown_dataset_suggests_the_closest_name():
    with pytest.raises(DatasetError, match="did you mean 'cifar100'"):
        ds.get_info("cifar-100")


@pytest.fixture
def http_server(tmp_path):
    """A loopback HTTP server over a folder, so torchvision's real downloader runs offline."""
    import functools
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield served, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def _serve(project, http_server, archive, md5):
    served, base = http_server
    (served / archive.name).write_bytes(archive.read_bytes())
    manifest = project / "datasets" / "manifest.yaml"
    entries = yaml.safe_load(manifest.read_text())
    entries["cifar100"] = {"url": f"{base}/{archive.name}", "filename": archive.name, "md5": md5}
    manifest.write_text(yaml.safe_dump(entries))


def test_download_verifies_md5_then_prepares(project, cifar100_archive, http_server):
    _serve(project, http_server, cifar100_archive, hashlib.md5(cifar100_archive.read_bytes()).hexdigest())
    assert "prepared" in ds.prepare_dataset("cifar100", project / "datasets")
    assert (project / "datasets" / "raw" / cifar100_archive.name).is_file()
    assert ds.dataset_status("cifar100", project / "datasets") == {
        "train": True, "test": True, "where": str(project / "datasets" / "cache" / "cifar100")}


def test_download_with_wrong_md5_fails_and_keeps_no_cache(project, cifar100_archive, http_server):
    _serve(project, http_server, cifar100_archive, "0" * 32)
    with pytest.raises(DatasetError, match="cifar-100-python.tar.gz"):
        ds.prepare_dataset("cifar100", project / "datasets")
    assert not (project / "datasets" / "cache" / "cifar100").exists()
    assert not (project / "datasets" / "raw" / cifar100_archive.name).exists()


def test_manifest_lists_the_published_checksums():
    from conftest import ROOT

    entries = yaml.safe_load((ROOT / "datasets" / "manifest.yaml").read_text())
    assert entries["cifar100"]["md5"] == "eb9058c3a382ffc7106e4002c42a8d85"
    assert entries["cifar10"]["md5"] == "c58f30108f718f92721af3b95e74349a"
    assert entries["tinyimagenet"]["md5"] == "90528d7ca1a48142e341f4ef8d21d0de"
