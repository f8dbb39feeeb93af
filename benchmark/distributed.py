"""Evaluation spread over processes, GPUs and machines, with accelerate.

The unit of work is one training run: (submission, dataset, architecture, seed). Started by
`torchrun` or `accelerate launch` (python -m benchmark …), every process builds the same task
list; each generator runs once, sandboxed, on one process (its prepared images are shared through
the results folder); the main process decides which runs remain — all of them minus those whose
resume file under leaderboard/.runs/ exists — and broadcasts that list; each process trains its
share (`split_between_processes`) on its device and saves every finished run at once; after a
barrier, the main process alone writes a row for each evaluation whose runs are all in, and the
leaderboard. A killed process loses only the runs it was training: launching again resumes.
The results folder must be shared by all machines (NFS or similar); writes are atomic renames.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from safetensors.torch import load_file, save_file

from evaluator.atomic import atomic_write, atomic_write_text
from evaluator.errors import DatasetError
from evaluator.evaluate import Evaluation

from . import runstate
from .console import info, set_prefix, warn
from .errors import UsageError
from .options import Options
from .results import Status
from .scoring import Job, Outcome, Unit, checked_units, conclude, identity, previous_result, train_run, units
from .tracks import Rejection, Task, isolated
from .tracks import record as record_prepared

COLLECTIVE_TIMEOUT = timedelta(days=7)  # a Tiny-ImageNet run on a slow device must not time a waiting rank out


def launched() -> bool:
    """Started by torchrun / accelerate launch with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@dataclass
class Workers:
    """This process's place among the others (accelerate's PartialState)."""
    state: object

    @classmethod
    def start(cls, device: str) -> "Workers":
        from accelerate import PartialState

        # Without cpu=True, a machine without CUDA would make every process believe it is alone.
        state = PartialState(cpu=not device.startswith("cuda"), timeout=COLLECTIVE_TIMEOUT)
        expected = int(os.environ.get("WORLD_SIZE", "1"))
        if state.num_processes != expected:
            raise UsageError(f"launched with {expected} processes but accelerate sees {state.num_processes}; "
                             f"on a CPU-only machine launch with torchrun --nproc_per_node N")
        workers = cls(state)
        set_prefix(f"[rank {workers.rank}/{workers.world}] ")
        return workers

    @property
    def rank(self) -> int:
        return self.state.process_index

    @property
    def world(self) -> int:
        return self.state.num_processes

    @property
    def is_main(self) -> bool:
        return self.state.is_main_process

    @property
    def device(self) -> str:
        return str(self.state.device)

    def barrier(self) -> None:
        self.state.wait_for_everyone()

    def split(self, items: list) -> list:
        with self.state.split_between_processes(items) as mine:
            return list(mine)

    def broadcast(self, obj):
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([obj], from_process=0)[0]


# -- generators: once each, on one process --------------------------------------------------------

def _shared_dir(opts: Options, task: Task) -> Path:
    """Where the images of a task's generation are shared: named by the generation's identity."""
    ident = identity(opts, task.identity, "", None).digest()
    return opts.project / "leaderboard" / ".runs" / "generated" / ident[:32]


def _remove_generated(opts: Options, tasks: list[Task]) -> None:
    """The shared folders of this launch's own generators (another launch may still read its own)."""
    for task in tasks:
        if task.generates:
            shutil.rmtree(_shared_dir(opts, task), ignore_errors=True)
    try:
        (opts.project / "leaderboard" / ".runs" / "generated").rmdir()  # only when no other launch's folder is left
    except OSError:
        pass


def _save(folder: Path, prepared) -> None:
    if isinstance(prepared, Job):
        for i, job in enumerate((prepared, *prepared.points)):
            atomic_write(folder / f"images-{i}.safetensors", lambda tmp, job=job: save_file(
                {"images": job.preview.contiguous(), "labels": job.labels.contiguous()}, str(tmp)))
        meta = {"kind": "job", "jobs": [{"fields": job.fields, "ipc": job.ipc, "epochs": job.protocol_epochs}
                                        for job in (prepared, *prepared.points)]}
    elif isinstance(prepared, Rejection):
        meta = {"kind": "rejection", "fields": prepared.fields, "status": prepared.status.value, "reason": prepared.reason}
    else:
        meta = {"kind": "skipped"}
    atomic_write_text(folder / "prepared.json", json.dumps(meta, default=list))


def _load(opts: Options, task: Task, folder: Path):
    meta = json.loads((folder / "prepared.json").read_text())
    if meta["kind"] == "skipped":
        return task.prepare()  # every result exists: this only reads them back, nothing runs
    if meta["kind"] == "rejection":
        return Rejection(_fields(meta["fields"]), Status(meta["status"]), meta["reason"])
    ds = opts.dataset(task.identity["dataset"], need_train=opts.protocol.leakage is not None)
    jobs = []
    for i, saved in enumerate(meta["jobs"]):
        data = load_file(str(folder / f"images-{i}.safetensors"))
        jobs.append(Job(ds=ds, fields=_fields(saved["fields"]), images=ds.normalize(data["images"]),
                        labels=data["labels"], preview=data["images"], ipc=saved["ipc"], protocol_epochs=saved["epochs"]))
    return replace(jobs[0], points=tuple(jobs[1:]))


def _fields(saved: dict) -> dict:
    return {**saved, "seeds": tuple(saved["seeds"])}


def _prepare_all(opts: Options, tasks: list[Task], workers: Workers) -> list:
    """Every task prepared on every process, generators run once (by the process they fall to)."""
    generating = [i for i, t in enumerate(tasks) if t.generates]
    for i in workers.split(generating):
        folder = _shared_dir(opts, tasks[i])
        try:
            _save(folder, isolated(opts, tasks[i], tasks[i].prepare))
        except DatasetError as exc:
            atomic_write_text(folder / "unprepared.txt", str(exc))
    workers.barrier()
    prepared = []
    for task in tasks:
        try:
            if task.generates:
                folder = _shared_dir(opts, task)
                if (folder / "unprepared.txt").exists():
                    raise DatasetError((folder / "unprepared.txt").read_text())
                prepared.append(_load(opts, task, folder))
            else:
                prepared.append(isolated(opts, task, task.prepare))
        except DatasetError as exc:
            if not task.skip_unprepared:
                raise
            if workers.is_main:
                warn(f"skipping {task.name}: {exc}")
            prepared.append([])
    return prepared


# -- training runs, spread ----------------------------------------------------------------------------

def _pending(opts: Options, all_units: list[Unit]) -> list[tuple[int, int]]:
    """(unit index, seed) of every run still to train (decided by the main process)."""
    plan = []
    for i, unit in enumerate(all_units):
        if opts.force:
            runstate.clear_runs(opts.project, unit.run_key)
        elif previous_result(opts, unit.key, unit.name) is not None:
            continue
        done = runstate.load_runs(opts.project, unit.run_key)
        plan += [(i, seed) for seed in opts.seeds if seed not in done]
    return plan


def _saved_runs(opts: Options, unit: Unit) -> Evaluation | None:
    """The main process: the runs the processes saved, once all are in, with who trained which."""
    done = runstate.load_runs_with_workers(opts.project, unit.run_key)
    missing = [s for s in opts.seeds if s not in done]
    if missing:
        warn(f"{unit.name}: runs of seeds {missing} did not finish; launch again to train them")
        return None
    by: dict = {}
    for seed in opts.seeds:
        by.setdefault(done[seed][1], []).append(seed)
    info(f"{unit.name}: " + "; ".join(f"seeds {', '.join(map(str, seeds))} trained by rank {rank}"
                                      for rank, seeds in sorted(by.items(), key=lambda kv: str(kv[0]))))
    return Evaluation(runs=tuple(done[s][0] for s in opts.seeds), epochs=opts.epochs(unit.job.protocol_epochs))


def execute(opts: Options, tasks: list[Task], workers: Workers) -> list[Outcome]:
    """The tasks' evaluations, spread over the processes; outcomes on the main process only.
    opts.device is this process's device (workers.device)."""
    prepared = _prepare_all(opts, tasks, workers)
    all_units = [u for p in prepared if isinstance(p, Job) for u in units(opts, p)]
    plan = workers.broadcast(_pending(opts, all_units) if workers.is_main else None)
    info(f"{len(plan)} runs to train over {workers.world} processes; {len(workers.split(plan))} here")
    mine = workers.split(plan)
    for n, (i, seed) in enumerate(mine):
        train_run(opts, all_units[i], seed, worker=workers.rank, left=len(mine) - n - 1)
    workers.barrier()  # every run is in (or its process died, and the launcher stops us all)
    if not workers.is_main:
        return []
    outcomes: list[Outcome] = []
    for p in prepared:
        if not isinstance(p, Job):
            outcomes += record_prepared(opts, p)
    for unit in [u for p in prepared if isinstance(p, Job) for u in checked_units(opts, p)]:
        outcome = conclude(opts, unit, lambda unit=unit: _saved_runs(opts, unit))
        outcomes += [outcome] if outcome else []
    _remove_generated(opts, tasks)
    return outcomes
