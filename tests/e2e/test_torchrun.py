"""Real torchrun launches on the CPU (gloo): one row matching a single-process run, a killed
process losing only its runs, a generator run once for every process."""
import json
import os
import re
import signal
import subprocess
import sys
import time

from conftest import ROOT, add_generator, add_team, read_results


def torchrun(project, *args, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "benchmark", *map(str, args), "--root", str(project)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def test_torchrun_on_the_cpu_writes_one_row_that_matches_a_single_process_run(project):
    add_team(project, "random_ipc10")
    out, _ = torchrun(project, "run", "--track", "fixed-ipc", "--dataset", "digits", "--runs", "4",
                      "--epochs", "5").communicate(timeout=600)
    rows = read_results(project)
    assert len(rows) == 1 and rows[0]["team"] == "random_ipc10" and rows[0]["seeds"] == "[0, 1, 2, 3]", out
    assert rows[0]["runs"] == "4" and rows[0]["nonstandard"] == "runs=4 epochs=5"
    trained = re.findall(r"\[rank (\d)/2\] random_ipc10/digits seed (\d):", out)
    assert sorted(trained, key=lambda t: t[1]) == [("0", "0"), ("0", "1"), ("1", "2"), ("1", "3")], out
    assert "seeds 0, 1 trained by rank 0; seeds 2, 3 trained by rank 1" in out
    single = subprocess.run([sys.executable, "-m", "benchmark", "evaluate", str(project / "submissions" / "random_ipc10" /
                             "digits.safetensors"), "--dataset", "digits", "--root", str(project), "--runs", "4",
                             "--epochs", "5", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert json.loads(single.stdout)["acc_runs"] == json.loads(rows[0]["acc_runs"])  # the same seeds, the same runs


def test_a_killed_process_loses_only_its_runs_and_a_new_launch_resumes(project):
    add_team(project, "alpha")
    args = ("submit", "alpha", "--runs", "4", "--epochs", "60", "--no-compile")
    proc = torchrun(project, *args, start_new_session=True)
    runs = project / "leaderboard" / ".runs"
    deadline = time.time() + 300
    while time.time() < deadline and not list(runs.glob("*/seed-*.json")):
        time.sleep(0.2)
    workers = subprocess.run(["pgrep", "-f", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    os.kill(int(workers[-1]), signal.SIGKILL)  # one of the two training processes
    proc.communicate(timeout=120)
    # what the launch left (the other process may have finished a run before the launch stopped it)
    finished = {p.name: p.stat().st_mtime_ns for p in runs.glob("*/seed-*.json")}
    assert 0 < len(finished) < 4 and read_results(project) == []  # no row while runs are missing
    out, _ = torchrun(project, *args).communicate(timeout=600)
    rows = read_results(project)
    assert len(rows) == 1 and rows[0]["seeds"] == "[0, 1, 2, 3]", out
    for name, mtime in finished.items():  # finished runs were not trained again
        [path] = runs.glob(f"*/{name}")
        assert path.stat().st_mtime_ns == mtime
    assert f"{4 - len(finished)} runs to train over 2 processes" in out


def test_a_generator_runs_once_and_every_process_trains_on_its_images(project):
    add_generator(project, "gen", "write_valid_shard(args, per_class=3)\n")
    out, _ = torchrun(project, "submit", "gen", "--runs", "2", "--epochs", "2", "--wait", "0").communicate(timeout=600)
    assert out.count("gen/digits: generating") == 1, out
    rows = read_results(project)
    assert len(rows) == 1 and rows[0]["status"] == "ok" and rows[0]["ipc"] == "3"
    assert re.search(r"\[rank 0/2\] gen/digits seed 0", out) and re.search(r"\[rank 1/2\] gen/digits seed 1", out)
    assert not (project / "leaderboard" / ".runs" / "generated").exists()  # the shared images are cleaned up
