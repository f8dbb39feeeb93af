"""bench data / bench evaluate through the real command-line entry point."""
import json
import os
import statistics
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, make_reference

from benchmark import results
from benchmark.cli import main
from benchmark.protocol import load_protocol
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


def test_help_and_the_page_start_without_torch_or_scipy():
    """`bench --help`, `bench leaderboard` and `bench results check` import what they use only:
    torch and scipy take seconds to import, and none of these trains."""
    code = ("import sys; from benchmark.cli import build_parser; build_parser()\n"
            "import benchmark.leaderboard, benchmark.results, benchmark.signing\n"
            "print(sorted(m for m in ('torch', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def test_evaluate_runs_the_leakage_check_on_the_dataset(capsys, tmp_path):
    """`bench evaluate --dataset` reports, like a row, how many images copy test images."""
    from safetensors.torch import save_file

    d = ds.load_dataset("digits", tmp_path)
    idx = torch.cat([torch.nonzero(d.test_labels == c).flatten()[:10] for c in range(10)])
    copied = tmp_path / "copied.safetensors"
    save_file({"images": d.test_images[idx].contiguous(), "labels": d.test_labels[idx].contiguous()}, str(copied))
    r = run_json(capsys, copied, "--dataset", "digits", "--root", ROOT, "--preset", "quick")
    assert (r["leaked"], r["flagged"]) == (100, True)
    honest = run_json(capsys, DIGITS_FILE, "--dataset", "digits", "--root", ROOT, "--preset", "quick")
    assert (honest["leaked"], honest["flagged"]) == (0, False)
