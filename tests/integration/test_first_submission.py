"""The README's first-submission walkthrough, followed as written: export the training split,
run the example distiller from the README, make the folder, validate and submit it."""
import json
import re
import sys

import pytest
from safetensors import safe_open

from benchmark.cli import main
from conftest import QUICK, ROOT, read_results


def readme_block(start: str) -> str:
    """The fenced code block of the README whose first line starts with `start`, dedented."""
    for block in re.findall(r"```\w*\n(.*?)```", (ROOT / "README.md").read_text(), re.S):
        lines = block.splitlines()
        indent = len(lines[0]) - len(lines[0].lstrip())
        text = "\n".join(line[indent:] for line in lines)
        if text.startswith(start):
            return text
    raise AssertionError(f"no README block starting with {start!r}")


def test_the_walkthrough_makes_a_submission_that_validates_and_scores(project, tmp_path, monkeypatch, capsys):
    exported = tmp_path / "digits-train.safetensors"
    assert main(["data", "export", "digits", "--root", str(project), "--out", str(exported)]) == 0
    with safe_open(str(exported), "pt") as f:
        meta, images, labels = f.metadata(), f.get_tensor("images"), f.get_tensor("labels")
    assert (meta["split"], json.loads(meta["classes"])[3]) == ("train", "three") and images.shape[1:] == (3, 8, 8)
    assert len(labels) == len(images) > 1000

    folder = project / "submissions" / "ada"
    folder.mkdir(parents=True)
    distill = readme_block("# distill.py")
    monkeypatch.setattr(sys, "argv", ["distill.py", str(exported), str(folder / "digits.safetensors")])
    exec(compile(distill, "distill.py", "exec"), {"__name__": "__main__"})
    printf = next(line for line in readme_block("mkdir -p submissions/ada").splitlines() if line.startswith("printf"))
    spec = re.search(r"printf '(.*)' >", printf).group(1).encode().decode("unicode_escape")
    (folder / "submission.yaml").write_text(spec)

    assert main(["validate", "ada", "--root", str(project)]) == 0
    assert main(["submit", "ada", "--root", str(project), *QUICK]) == 0
    [row] = read_results(project)
    assert (row["status"], row["ipc"], row["track"], row["leaked"]) == ("ok", "10", "fixed-ipc", "0")


def test_export_names_a_safetensors_file(project, capsys):
    assert main(["data", "export", "digits", "--root", str(project), "--out", "x.pt"]) == 2
    assert "export is a .safetensors file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["data", "export", "digits", "--split", "test"])  # test images are not handed out


def test_distill_writes_a_submission_file_that_validates(project, capsys, tmp_path):
    """bench distill: a classic method's set, written where a submission folder wants it, evaluates
    like any team's (here: herding after one training epoch, on photodigits, built on first use)."""
    team = project / "submissions" / "herd"
    assert main(["distill", "herding", "--dataset", "photodigits", "--out", str(team), "--root", str(project)]) == 2
    assert "not a folder" in capsys.readouterr().err
    team.mkdir(parents=True)
    assert main(["distill", "herding", "--dataset", "photodigits", "--out", str(team), "--iterations", "1",
                 "--root", str(project)]) == 0
    (team / "submission.yaml").write_text("team: herd\nmethod: herding\ntrack: fixed-ipc\ndatasets: [photodigits]\n")
    capsys.readouterr()
    assert main(["validate", "herd", "--root", str(project)]) == 0, capsys.readouterr()
    assert main(["distill", "dm", "--dataset", "photodigits", "--out", str(team), "--ipc", "5000",
                 "--root", str(project)]) == 2
    assert "has only" in capsys.readouterr().err
