"""Usage errors and `bench validate` on a team folder."""
import torch
from conftest import add_team, read_results, submit

from benchmark.cli import main


def test_unknown_team_and_dataset_not_entered_are_usage_errors(project, capsys):
    add_team(project, "alpha")
    assert submit(project, "alhpa") == 2
    assert submit(project, "alpha", "--dataset", "cifar100") == 2
    assert "does not enter cifar100" in capsys.readouterr().err
    assert read_results(project) == []


def test_validate_reports_hashes_and_normalisation_warning(project, capsys):
    folder = add_team(project, "alpha")
    assert main(["validate", "alpha", "--root", str(project)]) == 0
    err = capsys.readouterr().err
    assert "sha256" in err and "digits.safetensors" in err and "ok digits" in err
    (folder / "digits.safetensors").unlink()
    torch.save(torch.rand(100, 3, 8, 8), folder / "digits.pt")  # floats in [0, 1], not normalised
    assert main(["validate", "alpha", "--root", str(project)]) == 0
    assert "every value lies in [0, 1]" in capsys.readouterr().err
    torch.save(torch.rand(100, 3, 8, 8) * 0.2 - 1.5, folder / "digits.pt")  # normalised-looking range, odd statistics
    assert main(["validate", "alpha", "--root", str(project)]) == 0
    assert "far from a normalised dataset" in capsys.readouterr().err
    torch.save(torch.rand(90, 3, 8, 8), folder / "digits.pt")
    assert main(["validate", "alpha", "--root", str(project)]) == 1
