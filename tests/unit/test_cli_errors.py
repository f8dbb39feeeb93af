"""The command line's errors and `bench data`: exit codes and one-line messages."""
import pytest
import torch
from conftest import ROOT

from benchmark.cli import main

DIGITS_FILE = ROOT / "submissions" / "random_ipc10" / "digits.safetensors"


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
