"""What a hostile generator cannot do from inside the bubblewrap sandbox."""
import dataclasses
import json
import shutil
import threading

import pytest
from conftest import ROOT, add_generator, add_team, read_results

from benchmark import generation
from benchmark.cli import main
from benchmark.protocol import load_protocol
from benchmark.submission import parse_spec
from evaluator.data import load_dataset

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")


def changed_limits(**changes):
    """The released protocol's sandbox limits, with some changed."""
    return dataclasses.replace(load_protocol().sandbox_limits, **changes)


def run(project, folder, budget=30, limits=None):
    limits = limits or load_protocol().sandbox_limits
    ds = load_dataset("digits", project / "datasets")
    gen = generation.generate(parse_spec(folder), ds, generation.Settings("cpu", 0, budget, limits))
    report = {}
    for line in gen.log_tail.split(" | "):
        if line.startswith("REPORT "):
            report = json.loads(line[len("REPORT "):])
    return gen, report


PROBE = r'''
report = {}
def attempt(name, fn):
    try:
        fn()
        report[name] = "ALLOWED"
    except Exception as exc:
        report[name] = type(exc).__name__
def connect(host, port):
    s = socket.socket(); s.settimeout(2); s.connect((host, port)); s.close()
for spec in args.probe:
    kind, _, target = spec.partition("=")
    if kind == "read":
        attempt(spec, lambda t=target: open(t, "rb").read(1))
    elif kind == "write":
        attempt(spec, lambda t=target: open(t, "w").write("escaped"))
    elif kind == "connect":
        host, port = target.rsplit(":", 1)
        attempt(spec, lambda h=host, p=int(port): connect(h, p))
print("REPORT " + json.dumps(report), flush=True)
write_valid_shard(args)
'''


@pytest.fixture
def http_server():
    import http.server

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port
    server.shutdown()


def test_no_network_no_reading_outside_no_writing_outside(project, http_server, tmp_path):
    other = add_team(project, "other")
    (project / "leaderboard").mkdir(exist_ok=True)
    (project / "leaderboard" / "results.csv").write_text("secret,results\n")
    host_tmp_marker = tmp_path / "escaped.txt"
    probes = [
        f"connect=127.0.0.1:{http_server}",  # the harness machine's loopback
        "connect=1.1.1.1:53",
        f"read={project / 'datasets' / 'manifest.yaml'}",
        f"read={project / 'leaderboard' / 'results.csv'}",
        f"read={ROOT / 'README.md'}",
        f"read={ROOT / 'evaluator' / 'train.py'}",
        f"read={other / 'submission.yaml'}",
        "read=../other/submission.yaml",
        "read=/root/.bashrc",
        "read=/etc/shadow",
        "write=/submission/escaped.txt",
        f"write={project / 'leaderboard' / 'escaped.txt'}",
        f"write={host_tmp_marker}",
        "write=/usr/escaped.txt",
        "read=/submission/generate.py",  # control: its own folder is readable
        "write=/tmp/private.txt",  # control: a private /tmp is writable
    ]
    folder = add_generator(project, "probe", PROBE, args=[f"--probe={p}" for p in probes])
    gen, report = run(project, folder)
    assert gen.returncode == 0 and len(gen.shards) == 1, gen.log_tail
    assert report.pop("read=/submission/generate.py") == "ALLOWED"
    assert report.pop("write=/tmp/private.txt") == "ALLOWED"
    allowed = {k: v for k, v in report.items() if v == "ALLOWED"}
    assert not allowed and len(report) == len(probes) - 2, report
    assert not (folder / "escaped.txt").exists() and not host_tmp_marker.exists()
    assert not (project / "leaderboard" / "escaped.txt").exists()
    assert (project / "leaderboard" / "results.csv").read_text() == "secret,results\n"


def test_the_repository_shows_nothing_but_the_environment(project):
    body = f"print('REPORT ' + json.dumps({{'listing': sorted(os.listdir({str(ROOT)!r})) if os.path.isdir({str(ROOT)!r}) else []}}))\nwrite_valid_shard(args)\n"
    gen, report = run(project, add_generator(project, "lister", body))
    assert set(report["listing"]) <= {".venv"}, report


def test_environment_is_scrubbed_and_protocol_variables_set(project, monkeypatch):
    monkeypatch.setenv("SECRET_TOKEN", "hunter2")
    body = "print('REPORT ' + json.dumps(dict(os.environ)))\nwrite_valid_shard(args)\n"
    gen, env = run(project, add_generator(project, "envy", body), budget=25)
    assert "SECRET_TOKEN" not in env and env["HOME"] == "/tmp" and env["HF_HUB_OFFLINE"] == "1"
    assert env["BENCH_BUDGET_SECONDS"] == "25" and float(env["BENCH_DEADLINE"]) > 0


def test_fork_bomb_is_capped_and_the_harness_survives(project):
    body = """
children = 0
try:
    while children < 10000:
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        children += 1
except OSError as exc:
    failure = type(exc).__name__
else:
    failure = None
print("REPORT " + json.dumps({"children": children, "failure": failure}), flush=True)
os.killpg(0, 9)
"""
    gen, report = run(project, add_generator(project, "bomb", body), budget=60, limits=changed_limits(max_processes=64))
    assert report["failure"] in ("BlockingIOError", "OSError") and report["children"] < 64, report


def test_disk_fill_stops_at_the_output_cap(project):
    body = """
written = 0
chunk = b"x" * (1 << 20)
try:
    with open(os.path.join(args.out, "big.bin"), "wb") as f:
        while written < (1 << 40):
            f.write(chunk); f.flush(); written += len(chunk)
except OSError as exc:
    print("REPORT " + json.dumps({"written": written, "error": type(exc).__name__}), flush=True)
    raise
"""
    cap = 32 << 20
    gen, report = run(project, add_generator(project, "filler", body), limits=changed_limits(max_output_bytes=cap))
    assert gen.crashed and report["written"] <= cap, report


def test_hostile_generators_leave_the_leaderboard_intact(project):
    add_team(project, "good")
    assert main(["submit", "good", "--root", str(project), "--preset", "quick", "--wait", "0"]) == 0
    before = (project / "leaderboard" / "results.csv").read_text()
    add_generator(project, "bomb", "while True:\n    try:\n        os.fork()\n    except OSError:\n        time.sleep(0.01)\n")
    assert main(["submit", "bomb", "--root", str(project), "--preset", "quick", "--budget", "6"]) == 1
    rows = read_results(project)
    assert (project / "leaderboard" / "results.csv").read_text().startswith(before)
    assert [r["status"] for r in rows] == ["ok", "timeout"]


def submit_under(project, team, **limit_changes):
    """tracks.submit with the released protocol's sandbox limits changed; returns the outcome."""
    from benchmark import tracks
    from benchmark.options import Options, Overrides

    p = load_protocol()
    p = dataclasses.replace(p, sandbox_limits=dataclasses.replace(p.sandbox_limits, **limit_changes))
    [outcome] = tracks.submit(Options(protocol=p, overrides=Overrides(runs=1, epochs=1), root=project, wait=0), team)
    return outcome


@pytest.mark.parametrize("where", ["heap", "/dev/shm", "/tmp"])
def test_memory_past_the_cap_is_killed_and_named(project, where):
    if where == "heap":
        body = "held = []\nwhile True:\n    held.append(bytearray(32 << 20))\n"
    else:
        body = (f"with open('{where}/fill', 'wb') as f:\n    while True:\n"
                f"        f.write(b'x' * (16 << 20)); f.flush()\n")
    add_generator(project, "hog", body)
    shared_before = _shared_memory()
    outcome = submit_under(project, "hog", max_memory_bytes=256 << 20, max_tmp_bytes=2 << 30)
    assert outcome.status == "failed" and "memory cap of 256 MiB" in outcome.message, outcome.message
    # nothing held on to after the kill: a private tmpfs the sandbox left mounted would keep its pages as
    # shared memory (Shmem). MemAvailable is not used: on a shared machine it moves by hundreds of MiB.
    assert _shared_memory() < shared_before + (128 << 20)


def _shared_memory() -> int:
    """The machine's tmpfs and shared-memory pages, in bytes (/proc/meminfo's Shmem)."""
    for line in open("/proc/meminfo"):
        if line.startswith("Shmem:"):
            return int(line.split()[1]) << 10
    raise AssertionError("/proc/meminfo has no Shmem line")


ISOLATION_PROBE = r'''
import ctypes
report = {"uid_map": open("/proc/self/uid_map").read().split()}
report["userns"] = ctypes.CDLL(None, use_errno=True).unshare(0x10000000)  # CLONE_NEWUSER: -1 = refused
report["cgroup_fs"] = os.path.exists("/sys/fs/cgroup")
report["cpu_topology"] = os.path.exists("/sys/devices/system/cpu/online")
report["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
for name, size in (("/tmp/big", 64), ("/dev/shm/big", 64)):
    try:
        with open(name, "wb") as f:
            f.write(b"x" * (size << 20))
        report[name] = "ALLOWED"
    except OSError as exc:
        report[name] = exc.strerror
open(os.path.join(args.out, "owner-probe"), "w").write("x")
print("REPORT " + json.dumps(report), flush=True)
write_valid_shard(args)
'''


def test_unprivileged_no_nested_namespaces_no_host_pids_small_tmp(project, monkeypatch):
    import os

    owners = []
    real = generation._complete_shards
    monkeypatch.setattr(generation, "_complete_shards",
                        lambda out, *rest: owners.extend(p.stat().st_uid for p in out.iterdir()) or real(out, *rest))
    folder = add_generator(project, "iso", ISOLATION_PROBE)
    gen, report = run(project, folder, limits=changed_limits(max_tmp_bytes=32 << 20))
    assert gen.returncode == 0, gen.log_tail
    assert report["userns"] == -1 and report["cgroup_fs"] is False and report["cpu_topology"] is True
    assert max(report["pids"]) < 10  # its own PID namespace: no host processes
    assert report["/tmp/big"] == report["/dev/shm/big"] == "No space left on device"
    if os.geteuid() == 0:  # the sandbox's uid is an unprivileged host user, not root
        assert report["uid_map"][0] == "65534"
        assert set(owners) == {65534}  # what it wrote belongs to host uid 65534


def test_a_generator_cannot_slow_the_clock(project):
    body = """
write_valid_shard(args)
n = 0
while True:  # a folder tree that makes any walk of /out slow
    d = os.path.join(args.out, f"d{n // 1000}")
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, str(n)), "w").close()
    n += 1
    if n % 5000 == 0:
        write_valid_shard(args)
"""
    gen, _ = run(project, add_generator(project, "slowwalk", body), budget=5)
    assert gen.timed_out and 4.9 <= gen.seconds <= 5.0
    assert gen.shards and gen.late_shards == 0


def test_a_killed_harness_leaves_nothing_the_next_start_does_not_clean(project):
    import os
    import signal
    import subprocess
    import sys
    import time

    from benchmark import cgroups, sandbox

    if os.geteuid() != 0:
        pytest.skip("cgroups and output mounts need root")
    add_generator(project, "sleeper", "write_valid_shard(args)\ntime.sleep(300)\n")
    proc = subprocess.Popen([sys.executable, "-m", "benchmark", "submit", "sleeper", "--root", str(project),
                             "--preset", "quick"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    pattern = f"{sandbox.PREFIX}{proc.pid}-"
    deadline = time.time() + 60
    while time.time() < deadline and f"{sandbox.TEMP_PREFIX}{proc.pid}-" not in open("/proc/mounts").read():
        time.sleep(0.2)
    time.sleep(1)
    os.kill(proc.pid, signal.SIGKILL)  # the harness only: its sandbox dies with it (bwrap --die-with-parent)
    proc.wait()
    left = [p for p in cgroups.hierarchies().values() for p in p.glob(f"{pattern}*")]
    assert left and pattern.replace(sandbox.PREFIX, sandbox.TEMP_PREFIX) in open("/proc/mounts").read()
    assert sandbox.cleanup_stale() == []
    assert not [p for p in cgroups.hierarchies().values() for p in p.glob(f"{pattern}*")]
    assert pattern.replace(sandbox.PREFIX, sandbox.TEMP_PREFIX) not in open("/proc/mounts").read()
    import tempfile
    from pathlib import Path

    assert not list(Path(tempfile.gettempdir()).glob(f"{sandbox.TEMP_PREFIX}{proc.pid}-*"))
