"""Generation values of the protocol reach the sandboxed generator: budget, limits, output cap."""
import dataclasses
import shutil

import pytest
from conftest import add_generator

from benchmark import cgroups, clock, tracks
from benchmark.options import Options, Overrides
from benchmark.protocol import load_protocol
from evaluator.ipc_epochs import IpcEpochTable

P = load_protocol()


GENERATOR_CHECKS = """
import resource
nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
tmp = os.statvfs("/tmp").f_blocks * os.statvfs("/tmp").f_frsize >> 20
if nofile != 99 or tmp != 48 or os.environ["BENCH_BUDGET_SECONDS"] != "6":
    raise SystemExit(f"limits not from the protocol: nofile {nofile}, /tmp {tmp} MiB, budget {os.environ['BENCH_BUDGET_SECONDS']}")
write_valid_shard(args, per_class=3)
time.sleep(100)
"""


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")
def test_generation_values_reach_the_generator_and_the_sandbox(project, monkeypatch):
    caps = []
    real_cgroups = cgroups.Cgroups
    monkeypatch.setattr(cgroups, "Cgroups", lambda limits: caps.append(limits) or real_cgroups(limits))
    measured = []
    real_measure = clock.measure_fresh
    monkeypatch.setattr(clock, "measure_fresh", lambda *a: measured.append(real_measure(*a)) or measured[-1])
    add_generator(project, "gen", GENERATOR_CHECKS)
    p = dataclasses.replace(P, budgets={"digits": 6.0}, max_ipc=2, ipc_epochs=IpcEpochTable(rows=((1, 6),), cap=6),
                            clock=dataclasses.replace(P.clock, targets={}),  # no target device: unscaled
                            sandbox_limits=dataclasses.replace(P.sandbox_limits, max_processes=77, max_open_files=99,
                                                               max_memory_bytes=3 << 30, max_tmp_bytes=48 << 20))
    [outcome] = tracks.submit(Options(protocol=p, overrides=Overrides(runs=1), root=project, wait=0), "gen")
    r = outcome.result
    assert outcome.status == "ok", outcome.message
    assert (r.budget_seconds, r.ipc, r.images_dropped, r.epochs) == (6.0, 2, 10, 3)  # 1 x 6 image-steps / IPC 2
    assert 5.9 <= r.gen_seconds <= 6.05 and r.budget_effective == 6.0 and r.clock in ("unscaled", "unstable")
    # the row holds the kept generation's two measurements (the last two: a busy machine may run it twice)
    assert (r.device_score, r.device_score_after) == (measured[-2].value, measured[-1].value)
    assert len(measured) in (2, 4) and all(m.workload == "cpu" and m.resolution == 8 for m in measured)
    assert {(c.max_processes, c.max_memory_bytes) for c in caps} == {(77, 3 << 30)}


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")
def test_the_output_cap_comes_from_the_protocol(project):
    add_generator(project, "big", "open(args.out / 'blob', 'wb').write(os.urandom(3 << 20))\nwrite_valid_shard(args)\n")
    p = dataclasses.replace(P, sandbox_limits=dataclasses.replace(P.sandbox_limits, max_output_bytes=1 << 20))
    [outcome] = tracks.submit(Options(protocol=p, overrides=Overrides(runs=1, epochs=1), root=project, wait=0), "big")
    assert outcome.status == "failed" and ("1 MiB" in outcome.message or "too large" in outcome.message
                                           or "No space left" in outcome.message), outcome.message
