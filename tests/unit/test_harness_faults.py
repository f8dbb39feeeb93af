"""A fault of the harness itself is the harness's: exit 2, the traceback kept, no team blamed."""
from conftest import QUICK, add_team, read_results

from benchmark import tracks
from benchmark.cli import main


def test_a_fault_of_the_harness_exits_2_with_its_traceback_and_blames_no_team(project, monkeypatch, capsys):
    add_team(project, "alpha")

    def bug(*args, **kwargs):
        raise KeyError("a mistyped key inside the harness")

    monkeypatch.setitem(tracks.PREPARERS, "fixed-ipc", bug)
    assert main(["run", "--track", "fixed-ipc", "--root", str(project), *QUICK]) == 2
    assert "internal error of the harness (KeyError" in capsys.readouterr().err
    assert all(r["status"] != "failed" for r in read_results(project))
    logs = list((project / "leaderboard" / ".runs" / "logs").glob("harness-error-*.log"))
    assert len(logs) == 1 and "Traceback" in logs[0].read_text() and "a mistyped key" in logs[0].read_text()
