"""Reference rows: random real images at the track's IPC, and the full training set.

`random` also writes the selection into the shipped example submission (submissions/random_ipc10/)
so the same images can be submitted like any team's.
"""
from __future__ import annotations

from dataclasses import replace

import torch
import yaml
from safetensors.torch import save_file

from evaluator.atomic import atomic_write
from evaluator.data import Dataset, tensor_digest

from .console import info
from .errors import UsageError
from .options import Options
from .results import FULL_TEAM, random_team
from .scoring import Job, describe
from .submission import SPEC_FILE
from .tracks import Task

EXAMPLE_TEAM = "random_ipc10"


def random_indices(labels: torch.Tensor, num_classes: int, ipc: int, gen: torch.Generator) -> torch.Tensor:
    """Indices of `ipc` random examples of every class (class-ordered), drawn from `gen`."""
    picks = []
    for c in range(num_classes):
        members = torch.nonzero(labels == c).flatten()
        picks.append(members[torch.randperm(len(members), generator=gen)[:ipc]])
    return torch.cat(picks)


def random_selection(ds: Dataset, ipc: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`ipc` random training images of every class (class-ordered), from a seeded generator."""
    idx = random_indices(ds.train_labels, ds.info.num_classes, ipc, torch.Generator().manual_seed(seed))
    return ds.train_images[idx].contiguous(), ds.train_labels[idx].contiguous()


def write_example(opts: Options, dataset: str, images: torch.Tensor, labels: torch.Tensor) -> None:
    folder = opts.project / "submissions" / EXAMPLE_TEAM
    path = folder / f"{dataset}.safetensors"
    if not path.exists():
        atomic_write(path, lambda tmp: save_file({"images": images, "labels": labels}, str(tmp)))
        info(f"wrote {path.relative_to(opts.project)}")
    spec_path = folder / SPEC_FILE
    spec = yaml.safe_load(spec_path.read_text()) if spec_path.is_file() else {
        "team": EXAMPLE_TEAM, "method": "Random real training images, 10 per class (seed 0)",
        "track": "fixed-ipc", "datasets": [],
        "notes": "Written by `bench baseline random --dataset D`, which adds a file for each prepared dataset."}
    if dataset not in spec["datasets"]:
        spec["datasets"].append(dataset)
        atomic_write(spec_path, lambda tmp: tmp.write_text(yaml.safe_dump(spec, sort_keys=False)))


def job_random(opts: Options, dataset: str, ipc: int | None = None, example: bool = True) -> Job | list:
    """IPC random real images per class (default: the fixed-IPC track's), selected with the first
    run's seed; epochs: the fixed-IPC track's at its IPC, else the IPC-epoch rule's. example: write
    the selection into submissions/random_ipc10 (bench baseline, not the references a submission
    asks for). An IPC beyond the smallest class is a usage error, or, asked for by a submission,
    no reference (an empty list: nothing to evaluate; the full set stands for it)."""
    protocol, seed = opts.protocol, opts.seeds[0]
    ipc = protocol.fixed_ipc if ipc is None else ipc
    epochs = protocol.fixed_epochs if ipc == protocol.fixed_ipc else protocol.ipc_epochs.epochs(ipc)
    ds = opts.dataset(dataset, need_train=True)
    short = ds.smallest_class
    if ipc > short:
        why = f"a class of {dataset} has only {short} training images (bench baseline full is the whole set)"
        if not example:
            info(f"no random reference at IPC {ipc}: {why}")
            return []
        raise UsageError(f"--ipc {ipc}: {why}")
    images, labels = random_selection(ds, ipc, seed)
    if example and seed == protocol.seeds[0] and ipc == protocol.fixed_ipc:
        write_example(opts, dataset, images, labels)
    fields = describe(opts, epochs, team=random_team(ipc), method=f"random real images (seed {seed})",
                      track="reference", dataset=dataset, submission_sha256=tensor_digest(images, labels))
    return Job(ds=ds, fields=fields, images=ds.normalize(images), labels=labels, preview=images,
               ipc=ipc, protocol_epochs=epochs)


def job_full(opts: Options, dataset: str) -> Job:
    """The whole training set; epochs from the IPC-epoch rule at its IPC (e.g. 500 -> 20)."""
    ds = opts.dataset(dataset, need_train=True)
    images, labels = ds.train_images, ds.train_labels
    ipc = ds.smallest_class
    epochs = opts.protocol.ipc_epochs.epochs(ipc)
    fields = describe(opts, epochs, team=FULL_TEAM, method=f"all {len(labels)} training images",
                      track="reference", dataset=dataset, submission_sha256=tensor_digest(images, labels))
    return Job(ds=ds, fields=fields, images=ds.normalize(images), labels=labels, preview=images, ipc=ipc,
               protocol_epochs=epochs, leak_checked=False)  # the training set itself: nothing to check


def baseline_tasks(opts: Options, kind: str, datasets: list[str], ipc: int | None = None,
                   example: bool = True) -> list[Task]:
    """random: ipc random images per class (default the fixed-IPC track's); full: the training set."""
    ipc = opts.protocol.fixed_ipc if ipc is None else ipc
    if ipc < 1:
        raise UsageError(f"--ipc {ipc}: give a positive number of images per class")
    team = random_team(ipc) if kind == "random" else FULL_TEAM
    make = (lambda d: job_random(opts, d, ipc, example)) if kind == "random" else (lambda d: job_full(opts, d))
    return [Task(f"{team}/{d}", dict(team=team, method="", track="reference", dataset=d, submission_sha256=""),
                 lambda d=d: make(d)) for d in datasets]


REFERENCED = ("fixed-ipc", "generative", "soft-label")  # tracks whose ranked rows are read against references


def reference_tasks(opts: Options, results: list) -> list[Task]:
    """The reference rows standard results are read against (improvement over random at the same
    IPC, recovery of the full-data score), for the datasets and IPCs of those results; an
    identical reference already recorded is skipped when its task runs (never forced: --force is
    about the command's own evaluations)."""
    opts = replace(opts, force=False)
    wanted = [r for r in results if r is not None and r.status.value == "ok" and r.standard
              and r.track in REFERENCED and r.ipc and not (r.anytime is not None and r.anytime < 1)]
    pairs = sorted({(r.dataset, r.ipc) for r in wanted})
    tasks = [t for d, ipc in pairs for t in baseline_tasks(opts, "random", [d], ipc, example=False)]
    return tasks + baseline_tasks(opts, "full", sorted({d for d, _ in pairs}))
