"""bench data / bench evaluate through the real command-line entry point."""
import json
import statistics

import pytest
import torch

from benchmark import results
from benchmark.cli import main
from benchmark.protocol import load_protocol
from conftest import ROOT, make_reference
from evaluator import data as ds

DIGITS_FILE = ROOT / "submissions" / "random_ipc10" / "digits.safetensors"


def run_json(capsys, *argv):
    code = main(["evaluate", *map(str, argv), "--json", "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def test_evaluate_json_reports_runs_seeds_and_protocol(capsys):
    r = run_json(capsys, DIGITS_FILE, "--dataset", "digits", "--root", ROOT, "--epochs", "20", "--runs", "2",
                 "--seed", "5")
    assert r["seeds"] == [5, 6] and len(r["acc_runs"]) == 2 and r["epochs"] == 20 and r["standard"] is False
    assert r["nonstandard"] == "runs=2 seed=5 epochs=20" and r["protocol_version"] == str(load_protocol().version) and r["status"] == "ok"
    assert r["acc_mean"] == pytest.approx(sum(r["acc_runs"]) / 2, abs=1e-3)
    assert r["acc_std"] == pytest.approx(statistics.stdev(r["acc_runs"]), abs=1e-3)  # the sample std
    assert r["images"] == 100 and r["ipc"] == 10 and r["device"].startswith("CPU") and r["precision"] == "fp32"
    assert len(r["acc_per_class"]) == 10 and all(0 <= a <= 100 for a in r["acc_per_class"])
    assert set(r) == set(results.COLUMNS)  # the same record as a results.csv row


def test_reference_test_file_scores_exactly_like_the_dataset(capsys, tmp_path):
    d = ds.load_dataset("digits", tmp_path)
    ref = make_reference(tmp_path / "digits_test.pt", d.test_images, d.test_labels, d.info.mean, d.info.std)
    via_ref = run_json(capsys, DIGITS_FILE, "--test", ref, "--epochs", "15", "--runs", "1")
    via_ds = run_json(capsys, DIGITS_FILE, "--dataset", "digits", "--root", ROOT, "--epochs", "15", "--runs", "1")
    assert via_ref["acc_runs"] == via_ds["acc_runs"]


def test_official_float_format_with_reference_needs_no_dataset(capsys, tmp_path):
    d = ds.load_dataset("digits", tmp_path, need_train=True)
    order = torch.argsort(d.train_labels, stable=True)
    keep = torch.cat([order[d.train_labels[order] == c][:5] for c in range(10)])
    torch.save(d.normalize(d.train_images[keep]), tmp_path / "official.pt")  # class-ordered floats
    ref = make_reference(tmp_path / "t.pt", d.test_images, d.test_labels, d.info.mean, d.info.std)
    r = run_json(capsys, tmp_path / "official.pt", "--test", ref, "--epochs", "40", "--runs", "1")
    assert r["images"] == 50 and r["acc_mean"] > 30


def test_bad_file_exits_1_with_one_line(capsys, tmp_path):
    torch.save({"images": torch.zeros(10, 3, 8, 8), "labels": torch.arange(10) + 5}, tmp_path / "bad.pt")
    code = main(["evaluate", str(tmp_path / "bad.pt"), "--dataset", "digits", "--root", str(ROOT)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "labels out of range" in err and len(err.splitlines()) == 1


def test_missing_dataset_exits_2_naming_the_fetch_command(capsys, project):
    code = main(["evaluate", str(DIGITS_FILE), "--dataset", "cifar100", "--root", str(project)])
    err = capsys.readouterr().err
    assert code == 2 and "bench data download cifar100" in err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", str(DIGITS_FILE)])  # neither --dataset nor --test
    assert exc.value.code == 2
    assert main(["evaluate", str(DIGITS_FILE), "--dataset", "digits", "--root", str(ROOT), "--runs", "0"]) == 2


def test_data_prepare_info_and_list(capsys, project, cifar100_archive):
    assert main(["data", "prepare", "cifar100", "--from", str(cifar100_archive), "--root", str(project)]) == 0
    assert main(["data", "info", "cifar100", "--root", str(project)]) == 0
    assert main(["data", "list", "--root", str(project)]) == 0
    err = capsys.readouterr().err
    assert "prepared 200 train and 100 test" in err and "0:apple" in err and "cifar100" in err


@pytest.mark.slow
def test_full_protocol_on_digits_is_far_above_chance_and_reproducible(capsys):
    """Acceptance: random-real IPC 10 on digits, full 1000-epoch protocol, same seed twice."""
    a = run_json(capsys, DIGITS_FILE, "--dataset", "digits", "--root", ROOT, "--runs", "1", "--seed", "0")
    b = run_json(capsys, DIGITS_FILE, "--dataset", "digits", "--root", ROOT, "--runs", "1", "--seed", "0")
    assert a["epochs"] == 1000 and a["standard"] is False and a["nonstandard"] == "runs=1"
    assert a["acc_mean"] > 85  # chance is 10 %
    assert a["acc_runs"] == b["acc_runs"]
