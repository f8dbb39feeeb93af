"""Each architecture is its own result, through the command line."""
import json

from conftest import ROOT

from benchmark.cli import main
from evaluator import archs

DIGITS_FILE = ROOT / "submissions" / "random_ipc10" / "digits.safetensors"
PARAMETERS_AT_32PX_100_CLASSES = {"convnet": (0.4e6, 0.6e6), "resnet18": (10.5e6, 11.5e6), "vgg11": (8.5e6, 10e6),
                                  "alexnet": (1.5e6, 2.5e6), "vit": (5e6, 6e6)}


def test_evaluate_reports_arch_and_parameters_per_architecture(capsys):
    code = main(["evaluate", str(DIGITS_FILE), "--dataset", "digits", "--root", str(ROOT), "--preset", "quick",
                 "--device", "cpu", "--json", "--arch", "alexnet", "--arch", "vgg11"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and len(lines) == 2
    first, second = map(json.loads, lines)
    assert (first["arch"], second["arch"]) == ("alexnet", "vgg11")
    assert first["parameters"] == archs.parameter_count(archs.build("alexnet", 10, 8)) and second["parameters"] > 9e6
    assert first["standard"] is False and first["nonstandard"] == "preset=quick runs=1 epochs=2"  # arch is no deviation


def test_each_architecture_is_its_own_result(project):
    from conftest import add_team, read_results

    add_team(project, "alpha")
    quick = ["--root", str(project), "--preset", "quick", "--device", "cpu"]
    assert main(["submit", "alpha", *quick, "--arch", "convnet"]) == 0
    assert main(["submit", "alpha", *quick, "--arch", "convnet", "--arch", "alexnet"]) == 0  # convnet skipped
    rows = read_results(project)
    assert [r["arch"] for r in rows] == ["convnet", "alexnet"] and rows[1]["parameters"] != rows[0]["parameters"]
