"""The distributed executor in this process, as each rank of a launch would run it: only the
main process writes, each run is trained once, a second launch skips."""
from conftest import FakeState, add_team, read_results

from benchmark import distributed, runstate
from benchmark.options import Options, Overrides
from benchmark.protocol import load_protocol
from benchmark.tracks import submission_tasks


def quick(project, **over):
    return Options(protocol=load_protocol(), overrides=Overrides(runs=4, epochs=2, **over), root=project)


def test_only_the_main_process_writes_and_each_run_is_trained_once(project, monkeypatch):
    add_team(project, "alpha")
    opts = quick(project)
    tasks = submission_tasks(opts, "alpha")
    plan = distributed._pending(opts, [u for t in tasks for u in distributed.units(opts, t.prepare())])
    monkeypatch.setattr(distributed.Workers, "broadcast", lambda self, obj: plan)
    # the second process: trains its share, writes no row
    assert distributed.execute(opts, submission_tasks(opts, "alpha"), distributed.Workers(FakeState(1, 2))) == []
    assert read_results(project) == []
    key = distributed.units(opts, tasks[0].prepare())[0].run_key
    assert sorted(runstate.load_runs(project, key)) == [2, 3]
    # the main process: its share, then the row, once
    [outcome] = distributed.execute(opts, submission_tasks(opts, "alpha"), distributed.Workers(FakeState(0, 2)))
    rows = read_results(project)
    assert outcome.status == "ok" and len(rows) == 1 and rows[0]["seeds"] == "[0, 1, 2, 3]"
    workers = {seed: w for seed, (_, w) in runstate.load_runs_with_workers(project, key).items()}
    assert workers == {0: 0, 1: 0, 2: 1, 3: 1}
    # launched again on the same results: nothing to train, no second row
    monkeypatch.setattr(distributed.Workers, "broadcast", lambda self, obj: obj)
    [again] = distributed.execute(opts, submission_tasks(opts, "alpha"), distributed.Workers(FakeState(0, 1)))
    assert again.status == "skipped" and len(read_results(project)) == 1


def test_a_generation_shared_between_processes_keeps_its_curve_points(project, tmp_path):
    """The images a generator made on one rank reach every other rank with its anytime points."""
    from dataclasses import replace

    import torch

    from benchmark.scoring import Job
    from benchmark.tracks import Task

    opts = quick(project)
    ds = opts.dataset("digits")
    images, labels = torch.randint(0, 256, (30, 3, 8, 8), dtype=torch.uint8), torch.arange(30) % 10
    fields = {"team": "gen", "track": "generative", "dataset": "digits", "seeds": (0,), "anytime": None}

    def job(n, ipc, anytime=None):
        return Job(ds=ds, fields={**fields, "anytime": anytime}, images=ds.normalize(images[:n]), labels=labels[:n],
                   preview=images[:n], ipc=ipc, protocol_epochs=10_000 // ipc)

    made = replace(job(30, 3), points=(job(10, 1, 0.25), job(20, 2, 0.5)))
    distributed._save(tmp_path, made)
    task = Task("gen/digits", {"team": "gen", "dataset": "digits"}, lambda: None, generates=True)
    loaded = distributed._load(opts, task, tmp_path)
    assert [(j.ipc, j.fields["anytime"], len(j.labels)) for j in (loaded, *loaded.points)] == \
        [(3, None, 30), (1, 0.25, 10), (2, 0.5, 20)]
    assert torch.equal(loaded.points[1].preview, images[:20]) and loaded.fields["seeds"] == (0,)
    units = distributed.units(opts, loaded)
    assert len(units) == 3 and len({u.key for u in units}) == 3  # the main row and a unit per point
