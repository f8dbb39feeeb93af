"""Bounded team folders through `bench run`: a bad folder is an invalid row and the others go
on; team names that differ only in case are all refused."""
import time

import pytest
from conftest import QUICK, add_team, read_results

from benchmark.cli import main
from benchmark.errors import SubmissionError
from benchmark.submission import parse_spec


def test_a_bad_folder_is_an_invalid_row_and_bench_run_goes_on(project, capsys):
    add_team(project, "good")
    folder = add_team(project, "huge")
    with (folder / "weights.bin").open("wb") as f:
        f.truncate(64 << 30)
    started = time.monotonic()
    assert main(["run", "--track", "fixed-ipc", "--root", str(project), *QUICK]) == 0
    assert [r["team"] for r in read_results(project)] == ["good"]
    assert "skipping submissions/huge: its folder or submission.yaml is invalid" in capsys.readouterr().err
    assert main(["submit", "huge", "--root", str(project), *QUICK]) == 1
    row = read_results(project)[-1]
    assert row["status"] == "invalid" and "at most 16 GiB per file" in row["error"]
    assert time.monotonic() - started < 60  # hashing 64 GiB would take minutes


def test_team_names_that_differ_only_in_case_are_all_refused(project, capsys):
    for team in ("mel", "Mel", "MEL", "other"):
        add_team(project, team)
    with pytest.raises(SubmissionError, match=r"submissions/Mel: differs only in case from submissions/MEL, "
                                              r"submissions/mel; team names must differ in more than case: "
                                              r"rename one of the folders"):
        parse_spec(project / "submissions" / "Mel")
    assert main(["run", "--track", "fixed-ipc", "--root", str(project), *QUICK]) == 0
    assert [r["team"] for r in read_results(project)] == ["other"]
    err = capsys.readouterr().err
    for team in ("mel", "Mel", "MEL"):
        assert f"skipping submissions/{team}: its folder or submission.yaml is invalid" in err
    assert main(["submit", "Mel", "--root", str(project), *QUICK]) == 1
    row = read_results(project)[-1]
    assert (row["team"], row["status"]) == ("Mel", "invalid") and "differ in more than case" in row["error"]
