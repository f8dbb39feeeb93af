"""The calibrated generation clock: the budget rule, contention, the protocol's clock section, and
which shards each point of the anytime curve may use."""
from pathlib import Path

import pandas as pd
import pytest
import yaml

from benchmark import clock, curves
from benchmark.errors import UsageError
from benchmark.generation import Generation
from benchmark.options import Options, Overrides
from benchmark.protocol import load_protocol, parse_protocol
from benchmark.tracks import _new_sets
from conftest import released_protocol_text

LIMITS = (0.25, 4.0)


def test_budget_scales_by_target_over_measured_within_the_limits():
    assert clock.effective_budget(60, 120, 60, LIMITS) == clock.Budget(120, 2.0, "scaled")  # half as fast: twice the time
    assert clock.effective_budget(60, 120, 240, LIMITS) == clock.Budget(30, 0.5, "scaled")
    assert clock.effective_budget(60, 120, 6000, LIMITS) == clock.Budget(15, 0.25, "clamped")  # an H100 on digits
    assert clock.effective_budget(60, 120, 1, LIMITS) == clock.Budget(240, 4.0, "clamped")
    assert clock.effective_budget(300, None, 50, LIMITS) == clock.Budget(300, 1.0, "unscaled")  # no target device


def score(value):
    return clock.Score(value=value, spread=0.02, workload="cpu", resolution=8, samples=(value,) * 3)


def test_contention_is_a_moved_score_or_a_load_that_came_or_went():
    assert clock.contention(score(100), score(90), 0.05, 0.0, 0.15, 0.2) == ""
    assert "moved by 40%" in clock.contention(score(100), score(60), 0.0, 0.0, 0.15, 0.2)
    assert "used 55% of the CPUs during the generation and 5%" in clock.contention(score(100), score(100), 0.55, 0.05, 0.15, 0.2)
    assert clock.contention(score(40), score(40), 0.5, 0.45, 0.15, 0.2) == ""  # a steady load: in the score, and the budget
    assert "used 0%" in clock.contention(score(40), score(40), 0.0, 0.45, 0.15, 0.2)  # it went away meanwhile
    assert clock.contention(score(100), score(100), None, None, 0.15, 0.2) == ""  # a GPU generator: not counted


def test_cpu_time_is_read_per_cpu_with_steal_as_busy(tmp_path, monkeypatch):
    stat = tmp_path / "stat"
    stat.write_text("cpu  999 0 999 999 0 0 0 0\n"
                    "cpu0 10 1 4 100 5 1 1 3 0 0\n"   # busy 10+1+4+1+1+3 = 20, total 20+100+5 = 125
                    "cpu1 50 0 0 50 0 0 0 0 0 0\n"
                    "intr 1 2 3\n")
    monkeypatch.setattr(clock, "_cpus", lambda: {0})
    assert clock.cpu_jiffies(stat) == (20, 125)
    monkeypatch.setattr(clock, "_cpus", lambda: {0, 1})
    assert clock.cpu_jiffies(stat) == (70, 225)
    assert clock.cpu_jiffies(tmp_path / "missing") is None


def test_other_processes_share_excludes_the_generator_and_the_harness(monkeypatch):
    readings = iter([(1000, 2000), (1000 + 150, 2000 + 200)])  # 1.5 s busy of 2 s (tick 100)
    monkeypatch.setattr(clock, "cpu_jiffies", lambda: next(readings))
    monkeypatch.setattr(clock.os, "sysconf", lambda name: 100)
    own = iter([5.0, 5.1])
    monkeypatch.setattr(clock, "_own_cpu_seconds", lambda: next(own))
    meter = clock.CpuMeter()
    assert meter.share(generator_seconds=1.0) == pytest.approx((1.5 - 0.1 - 1.0) / 2.0)


def custom(tmp_path: Path, edit) -> Path:
    tree = yaml.safe_load(released_protocol_text())
    edit(tree)
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


def parse(path):
    return parse_protocol(yaml.safe_load(path.read_text()), str(path), released=False)


def test_the_released_protocol_names_the_digits_target_and_the_curve():
    p = load_protocol()
    assert p.target("digits").workload == "cpu" and p.target("digits").score > 0
    assert p.target("cifar100") is None  # no organisers' card measured yet: unscaled
    assert p.clock.fractions == (0.25, 0.5, 0.75) and "digits" in p.clock.anytime_datasets


@pytest.mark.parametrize("edit, fragment", [
    (lambda t: t["generative"]["clock"].update(scale_limits=[2, 4]), "scale_limits"),
    (lambda t: t["generative"]["clock"].update(workload=99), "calibration workload 1"),
    (lambda t: t["generative"]["clock"].update(tolerance=0), "generative.clock.tolerance"),
    (lambda t: t["generative"]["clock"]["targets"].update(mnist={"workload": "cpu", "score": 1, "device": "x"}),
     "unknown dataset"),
    (lambda t: t["generative"]["clock"]["targets"]["digits"].update(workload="tpu"), "workload one of"),
    (lambda t: t["generative"]["anytime"].update(fractions=[0.5, 0.25]), "increasing fractions"),
    (lambda t: t["generative"]["anytime"].update(fractions=[0.5, 1.0]), "increasing fractions"),
    (lambda t: t["generative"].pop("clock"), "missing key 'generative.clock'"),
])
def test_a_bad_clock_section_is_refused_with_its_key(tmp_path, edit, fragment):
    with pytest.raises(UsageError, match=fragment):
        parse(custom(tmp_path, edit))


def test_an_unstable_or_clamped_clock_is_a_deviation_and_a_budget_override_is_wall_time():
    opts = Options(load_protocol())
    assert opts.deviations(None, "digits", "scaled") == () and opts.deviations(None, "digits", "unscaled") == ()
    assert opts.deviations(None, "digits", "unstable") == ("clock=unstable",)
    assert opts.deviations(None, "digits", "clamped") == ("clock=clamped",)
    assert opts.calibrated() and not Options(load_protocol(), Overrides(budget=5)).calibrated()
    assert opts.anytime_fractions("digits") == (0.25, 0.5, 0.75) and opts.anytime_fractions("cifar100") == ()
    assert Options(load_protocol(), anytime=True).anytime_fractions("cifar100") == (0.25, 0.5, 0.75)
    assert Options(load_protocol(), anytime=False).anytime_fractions("digits") == ()
    with pytest.raises(UsageError, match="--wait -1"):
        Options(load_protocol(), wait=-1)


def generation(times, budget=100.0):
    shards = tuple(Path(f"shard-{i:05d}.safetensors") for i in range(len(times)))
    return Generation(shards=shards, seconds=max(times), timed_out=True, returncode=None, log_tail="",
                      budget=budget, shard_seconds=tuple(times))


def test_a_curve_point_uses_only_the_shards_complete_by_its_time():
    gen = generation([10, 30, 30.5, 80])
    assert [p.name for p in gen.shards_by(25)] == ["shard-00000.safetensors"]
    assert len(gen.shards_by(50)) == 3 and len(gen.shards_by(100)) == 4
    assert _new_sets(gen, (0.25, 0.5, 0.75)) == (0.25, 0.5)  # 0.75 holds the same shards as 0.5
    assert _new_sets(generation([10, 20]), (0.25, 0.5, 0.75)) == ()  # all done by 0.25: the main row alone
    assert _new_sets(generation([60, 90]), (0.25, 0.5, 0.75)) == (0.75,)  # nothing at 0.25 or 0.5


def test_the_curve_is_a_step_function_ending_where_the_main_images_existed():
    main = pd.Series({"anytime": None, "acc_mean": 80.0, "acc_ci95": 1.0, "ipc": 30, "gen_seconds": 45.0,
                      "budget_effective": 60.0, "budget_seconds": 60.0})
    points = pd.DataFrame([{"anytime": 0.25, "acc_mean": 60.0, "acc_ci95": 2.0, "ipc": 10}])
    curve = curves.points_of(main, points)
    assert [(p.fraction, p.accuracy, p.ipc) for p in curve] == [(0.25, 60.0, 10), (0.75, 80.0, 30)]
    chart = curves.svg(curve, 60.0)
    assert chart.startswith("<svg") and chart.count("<circle") == 2 and ">IPC 30<" in chart
    timed_out = replace_series(main, gen_seconds=60.0)
    assert curves.points_of(timed_out, points)[-1].fraction == 1.0


def replace_series(s, **kw):
    out = s.copy()
    for k, v in kw.items():
        out[k] = v
    return out


def test_a_disturbed_clock_never_stands_for_the_evaluation_and_a_mismatch_is_a_deviation():
    from benchmark.results import Result, Status
    from benchmark.scoring import _clock_deviation

    def r(nonstandard):
        return Result(team="t", method="m", track="generative", dataset="digits", status=Status.OK, nonstandard=nonstandard)

    assert _clock_deviation(r("clock=unstable")) and _clock_deviation(r("runs=1 clock=clamped"))
    assert _clock_deviation(r("clock=mismatch")) and not _clock_deviation(r("runs=1 epochs=2"))
    assert Options(load_protocol()).deviations(None, "digits", "mismatch") == ("clock=mismatch",)


def test_the_calibration_gets_the_generators_environment_not_thread_caps(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # torchrun's ranks have it; their generators do not
    monkeypatch.setenv("GOMP_SPINCOUNT", "10000")
    env = clock.calibration_env()
    assert "OMP_NUM_THREADS" not in env and env["GOMP_SPINCOUNT"] == "10000"
    assert env["MALLOC_MMAP_THRESHOLD_"] == str(64 << 20)
