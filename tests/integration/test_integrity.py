"""A score measures the submission alone: the leakage check, signed rows, re-running a row, and
protocol files of one's own checked like releases."""
import csv
import io
import sys
from pathlib import Path

import pytest
import torch
from conftest import KEY, QUICK, ROOT, add_team, read_results
from safetensors.torch import save_file

from benchmark import results, signing
from benchmark.cli import main
from evaluator.data import load_dataset
from evaluator.normalize import normalize

DIGITS = load_dataset("digits", None)


sys.path.insert(0, str(ROOT / "perf"))
from leakage_hits import pick  # noqa: E402  (the perf script's selection of test images)

TEST10, TEST_LABELS = pick(DIGITS.test_images, DIGITS.test_labels, 10)


# -- end to end: a team submitting test images -----------------------------------------------------

def _files(images, labels, official=False):
    buf = io.BytesIO()
    if official:  # the challenge's own format: normalised floats, labels implied
        torch.save(normalize(images, DIGITS.info.mean, DIGITS.info.std), buf)
        return {"digits.pt": buf.getvalue()}
    return {"digits.safetensors": _safetensors(images, labels)}


def _safetensors(images, labels):
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.safetensors"
        save_file({"images": images.contiguous(), "labels": labels.contiguous()}, str(path))
        return path.read_bytes()


@pytest.mark.parametrize("official", [False, True], ids=["uint8 safetensors", "normalised float .pt"])
def test_a_team_submitting_test_images_is_flagged_and_shown_with_its_pairs(project, capsys, official):
    add_team(project, "copier", _files(TEST10, TEST_LABELS, official))
    add_team(project, "honest")
    assert main(["run", "--track", "fixed-ipc", "--root", str(project), *QUICK]) == 0
    rows = {r["team"]: r for r in read_results(project)}
    assert rows["copier"]["leaked"] == "100" and rows["copier"]["flagged"] == "true"
    assert rows["honest"]["leaked"] == "0" and rows["honest"]["flagged"] == "false"
    assert "near copies of test images" in capsys.readouterr().err
    board = (project / "leaderboard" / "LEADERBOARD.md").read_text()
    flagged = board.split("## Flagged")[1].split("\n## ")[0]
    assert "| fixed-ipc | copier | digits | convnet | 100 of 100 |" in flagged and "honest" not in flagged
    assert (project / "leaderboard" / "grids" / "copier-digits-leaks.png").is_file()
    assert "copier" not in board.split("## Non-standard")[1].split("\n## ")[0]


# -- signed rows -----------------------------------------------------------------------------------

def _forge(project, **changes):
    """Append a well-formed row by hand (a copy of the last one, changed), as a forger would."""
    path = project / "leaderboard" / "results.csv"
    rows = list(csv.DictReader(path.open(newline="")))
    forged = {**rows[-1], **changes}
    with path.open("a", newline="") as f:
        csv.DictWriter(f, fieldnames=list(results.COLUMNS), lineterminator="\n").writerow(forged)
    return len(rows) + 2  # its line number


def test_with_a_key_every_row_is_signed_and_a_forged_row_is_named_and_never_trusted(project, capsys, monkeypatch):
    monkeypatch.setenv("BENCH_SIGNING_KEY", KEY)
    add_team(project, "alpha")
    assert main(["submit", "alpha", "--root", str(project), *QUICK]) == 0
    row = read_results(project)[0]
    assert row["signer"] == signing.load_key().fingerprint and len(row["signature"]) == 64
    assert main(["results", "check", "--root", str(project)]) == 0
    # the forger copies alpha's row (its real protocol_key) with a better score, then edits another
    line = _forge(project, acc_mean="99.9", acc_runs="[99.9]")
    capsys.readouterr()
    assert main(["results", "check", "--root", str(project)]) == 1
    err = capsys.readouterr().err
    assert f"results.csv line {line}: alpha/digits (ok) is unverified: signature does not match" in err
    # an honest submit of alpha is not skipped on the strength of the forged row
    assert main(["submit", "alpha", "--root", str(project), *QUICK]) == 0
    assert "protocol already evaluated" in capsys.readouterr().err  # the signed first row is trusted ...
    rows = read_results(project)
    assert len(rows) == 2
    key = signing.load_key()
    assert results.find_ok(project, rows[0]["protocol_key"], key).acc_mean == float(rows[0]["acc_mean"])
    assert main(["leaderboard", "--root", str(project)]) == 0
    board = (project / "leaderboard" / "LEADERBOARD.md").read_text()
    assert "Unverified rows" in board and "99.90" in board.split("## Unverified rows")[1]
    assert f"key `{key.fingerprint}`" in board


def test_a_forged_row_alone_does_not_make_an_honest_submit_skip(project, capsys, monkeypatch):
    add_team(project, "alpha")
    assert main(["submit", "alpha", "--root", str(project), *QUICK]) == 0  # unsigned: no key yet
    _forge(project, acc_mean="99.9", acc_runs="[99.9]")
    monkeypatch.setenv("BENCH_SIGNING_KEY", KEY)
    capsys.readouterr()
    assert main(["results", "check", "--root", str(project)]) == 1
    assert "line 2: alpha/digits (ok) is unverified: no signature" in capsys.readouterr().err
    assert main(["submit", "alpha", "--root", str(project), *QUICK]) == 0
    assert "protocol already evaluated" not in capsys.readouterr().err
    assert len(read_results(project)) == 3 and read_results(project)[-1]["signature"]


def test_without_a_key_rows_are_unsigned_and_the_page_says_so(project):
    add_team(project, "alpha")
    assert main(["submit", "alpha", "--root", str(project), *QUICK]) == 0
    assert read_results(project)[0]["signature"] == ""
    assert "The record is unsigned" in (project / "leaderboard" / "LEADERBOARD.md").read_text()


# -- re-running a row ------------------------------------------------------------------------------

def test_verify_reproduces_a_row_exactly_and_catches_an_edited_one(project, capsys):
    add_team(project, "alpha")
    assert main(["submit", "alpha", "--root", str(project), "--runs", "2", "--epochs", "3", "--device", "cpu"]) == 0
    assert main(["baseline", "random", "--dataset", "digits", "--root", str(project), *QUICK]) == 0
    capsys.readouterr()
    runs = project / "leaderboard" / ".runs"
    saved = sorted(runs.glob("*/seed-*.json"))
    assert saved
    for path in saved:  # a verification trains afresh: it neither reads nor writes saved runs
        path.write_text(path.read_text().replace('"accuracy": ', '"accuracy": 1'))
    assert main(["results", "verify", "--root", str(project), "--device", "cpu"]) == 0
    assert sorted(runs.glob("*/seed-*.json")) == saved
    err = capsys.readouterr().err
    assert err.count("reproduced: recorded") == 2 and "every run identical" in err and "2 of 2 rows reproduced" in err
    # a hand-edited score is not reproduced
    path = project / "leaderboard" / "results.csv"
    rows = list(csv.DictReader(path.open(newline="")))
    rows[0]["acc_runs"], rows[0]["acc_mean"] = "[99.0, 98.0]", "98.5"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(results.COLUMNS), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    assert main(["results", "verify", "--root", str(project), "--line", "2", "--device", "cpu"]) == 1
    assert "differs" in capsys.readouterr().err
    # changed files cannot be verified
    (project / "submissions" / "alpha" / "notes.txt").write_text("changed")
    assert main(["results", "verify", "--root", str(project), "--team", "alpha", "--device", "cpu"]) == 1
    assert "no longer hash" in capsys.readouterr().err


# -- what a hostile review found -------------------------------------------------------------------

def _float_file(pixels):
    buf = io.BytesIO()
    torch.save(((pixels / 255 - torch.tensor(DIGITS.info.mean).view(1, 3, 1, 1))
                / torch.tensor(DIGITS.info.std).view(1, 3, 1, 1)).float(), buf)
    return {"digits.pt": buf.getvalue()}


def test_float_images_are_checked_as_trained_not_as_their_clipped_preview(project):
    """Test images stored far outside the pixel range would show as flat squares once clipped:
    such files are refused; within the range, what is trained is what is checked."""
    add_team(project, "outside", _float_file(TEST10.float() * 10 + 256))
    add_team(project, "inside", _float_file(TEST10.float() * 1.4 - 50))
    assert main(["run", "--track", "fixed-ipc", "--root", str(project), *QUICK]) == 1
    rows = {r["team"]: r for r in read_results(project)}
    assert rows["outside"]["status"] == "invalid" and "of the pixel range" in rows["outside"]["error"]
    assert rows["inside"]["flagged"] == "true" and rows["inside"]["leaked"] == "100"


def test_a_deeply_nested_cell_is_a_damaged_line_not_a_crash(project, capsys):
    add_team(project, "alpha")
    assert main(["submit", "alpha", "--root", str(project), *QUICK]) == 0
    line = _forge(project, acc_runs="[" * 5000 + "]" * 5000)
    capsys.readouterr()
    assert main(["results", "check", "--root", str(project)]) == 2
    assert f"line {line}: column 'acc_runs'" in capsys.readouterr().err
    assert main(["leaderboard", "--root", str(project)]) == 2


def test_a_numeric_key_in_submission_yaml_is_invalid_and_others_go_on(project):
    add_team(project, "alpha", spec="team: alpha\nmethod: m\ntrack: fixed-ipc\ndatasets: [digits]\n? 0x" + "f" * 5000
             + "\n: 1\n")
    add_team(project, "beta")
    assert main(["run", "--track", "fixed-ipc", "--root", str(project), *QUICK, "--team", "alpha", "--team",
                 "beta"]) == 1
    rows = {r["team"]: r for r in read_results(project)}
    assert rows["alpha"]["status"] == "invalid" and "not text" in rows["alpha"]["error"]
    assert rows["beta"]["status"] == "ok"


def test_a_signed_row_replayed_or_moved_no_longer_verifies(project, capsys, monkeypatch):
    monkeypatch.setenv("BENCH_SIGNING_KEY", KEY)
    add_team(project, "alpha")
    assert main(["submit", "alpha", "--root", str(project), *QUICK]) == 0
    assert main(["submit", "alpha", "--root", str(project), *QUICK, "--force"]) == 0
    path = project / "leaderboard" / "results.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[1]]) + "\n")  # the first signed row, replayed at the end
    capsys.readouterr()
    assert main(["results", "check", "--root", str(project)]) == 1
    err = capsys.readouterr().err
    assert "line 4: alpha/digits (ok) is unverified" in err and "line 2" not in err and "line 3" not in err
    path.write_text("\n".join([lines[0], lines[2]]) + "\n")  # the first signed row removed
    assert main(["results", "check", "--root", str(project)]) == 1


def test_verify_refuses_an_unverified_row_and_recomputes_the_interval(project, capsys, monkeypatch):
    add_team(project, "alpha")
    assert main(["submit", "alpha", "--root", str(project), "--runs", "2", "--epochs", "3", "--device", "cpu"]) == 0
    _forge(project, device="NVIDIA H100", acc_ci95="1000", acc_runs="[99.0, 99.0]", acc_mean="99.0")
    capsys.readouterr()
    assert main(["results", "verify", "--root", str(project), "--line", "3", "--device", "cpu"]) == 1
    assert "differs" in capsys.readouterr().err  # the row's own CI cell is not trusted
    monkeypatch.setenv("BENCH_SIGNING_KEY", KEY)
    assert main(["results", "verify", "--root", str(project), "--line", "3", "--device", "cpu"]) == 1
    assert "cannot verify: its signature does not verify" in capsys.readouterr().err
