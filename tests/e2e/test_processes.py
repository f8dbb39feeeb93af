"""Real `bench` processes: concurrent writers, a kill between runs, the full protocol."""
import csv
import os
import re
import signal
import subprocess
import sys
import time

from conftest import ROOT, add_team, read_results

from benchmark.cli import main


ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def bench(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "benchmark.cli", *map(str, args)], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_two_submits_started_together_both_land_their_rows(project):
    add_team(project, "alpha")
    add_team(project, "beta")
    procs = [bench("submit", team, "--root", project, "--preset", "quick") for team in ("alpha", "beta")]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    with (project / "leaderboard" / "results.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["team"] for r in rows) == ["alpha", "beta"] and all(r["status"] == "ok" for r in rows)
    board = (project / "leaderboard" / "LEADERBOARD.md").read_text()
    assert "alpha" in board and "beta" in board


def test_the_same_submission_twice_at_once_is_evaluated_once(project):
    add_team(project, "alpha")
    procs = [bench("submit", "alpha", "--root", project, "--preset", "quick") for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert len(read_results(project)) == 1
    assert sum("use --force to re-evaluate" in err for _, err in outs) == 1


def test_killed_between_runs_resumes_with_the_remaining_runs_only(project):
    add_team(project, "alpha")
    args = ("submit", "alpha", "--root", project, "--epochs", "100", "--runs", "3", "--no-compile")
    proc = bench(*args, start_new_session=True)
    runs_dir = project / "leaderboard" / ".runs"
    deadline = time.time() + 240
    while time.time() < deadline and not list(runs_dir.glob("*/seed-0.json")):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = sorted(runs_dir.glob("*/seed-*.json"))
    assert finished, "no run finished before the deadline"
    assert read_results(project) == []  # killed: no row, no half-written file
    first = {p.name: (p.stat().st_mtime_ns, p.read_text()) for p in finished}
    log = project / "resume.log"  # output to a file, as in CI: no progress bar, one line per run
    with log.open("w") as f:
        subprocess.run([sys.executable, "-m", "benchmark.cli", *map(str, args)], cwd=ROOT, env=ENV, stdout=f,
                       stderr=subprocess.STDOUT, timeout=300)
    err = log.read_text()
    assert f"resuming, {len(finished)} of 3 runs already finished" in err, err
    trained = [int(s) for s in re.findall(r"^alpha/digits seed (\d): [\d.]+ % \([\d.]+ s\)", err, re.M)]
    assert trained == [2] or (trained == [1, 2] and "seed 1: " in err and "1 more run here, about" in err), err
    rows = read_results(project)
    assert len(rows) == 1 and rows[0]["status"] == "ok" and rows[0]["seeds"] == "[0, 1, 2]"
    for path in finished:  # the finished runs were not trained again
        assert (path.stat().st_mtime_ns, path.read_text()) == first[path.name]


def test_the_standard_score_ranks_and_no_override_displaces_it(project, capsys):
    """Acceptance: the shipped example, full protocol, ranks; again: skipped; then rows made with
    --runs, --precision, --seed and --epochs (each with --force) are non-standard, name the
    deviation, and the ranked Track 1 table still shows the 3-run standard score."""
    from conftest import EXAMPLE

    spec = (EXAMPLE / "submission.yaml").read_text().replace("- photodigits\n", "")  # its digits entry
    add_team(project, "random_ipc10", spec=spec)
    out, err = bench("submit", "random_ipc10", "--root", project, "--no-references").communicate(timeout=600)
    rows = read_results(project)
    assert len(rows) == 1 and rows[0]["standard"] == "true" and rows[0]["epochs"] == "1000", err
    assert rows[0]["nonstandard"] == "" and rows[0]["runs"] == "3" and rows[0]["seeds"] == "[0, 1, 2]"
    assert float(rows[0]["acc_mean"]) > 85 and len(eval(rows[0]["acc_runs"])) == 3
    standard = f"{float(rows[0]['acc_mean']):.2f} ± {float(rows[0]['acc_std']):.2f}"
    # the rest in this process: the standard row is what matters, and it came from a real process
    assert main(["submit", "random_ipc10", "--root", str(project), "--no-references"]) == 0
    assert "already evaluated" in capsys.readouterr().err and len(read_results(project)) == 1
    # each override alone would retrain 1000 epochs; short runs keep the test fast and still show
    # that every deviation is named and that none displaces the standard row
    for extra, named in ((("--runs", "1"), "runs=1 epochs=5"), (("--precision", "bf16", "--seed", "7"),
                                                                 "seed=7 precision=bf16 epochs=5"), ((), "epochs=5")):
        assert main(["submit", "random_ipc10", "--root", str(project), "--force", "--epochs", "5", *extra]) == 0
        last = read_results(project)[-1]
        assert (last["standard"], last["nonstandard"]) == ("false", named)
    board = (project / "leaderboard" / "LEADERBOARD.md").read_text()
    track1 = board.split("## Track 1: fixed IPC")[1].split("## ")[0]
    assert f"| 1 | random\\_ipc10 | Random real training images, 10 per class (seed 0) | {standard} (" in track1
    assert "| 3 | fp32 | 10 | 1000 |" in track1 and "[digits](grids/random_ipc10-digits.png)" in track1
    assert board.count("| fixed-ipc | random\\_ipc10 | digits |") == 3  # the non-standard rows, apart
