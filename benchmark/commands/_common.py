"""Options shared by several subcommands, and their conversion into one Options object.

Defaults and --help come from the protocol file: the command line only says how to depart
from it, and every departure makes a result non-standard (named in its row).
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Callable

from evaluator.recipe import PRECISIONS

from ..console import info
from ..options import Options, Overrides, find_root, resolve_device
from ..protocol import Protocol, load_protocol, load_protocol_file

# What evaluates (torch and the rest) is imported where a command runs, not here: `bench --help`
# and the commands that train nothing start without it.


def add_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", type=Path, default=None, metavar="DIR",
                        help="project root (default: found upwards from the current folder)")


def project_root(args: argparse.Namespace) -> Path:
    """--root, or the project root found upwards from the current folder."""
    return args.root.resolve() if args.root else find_root()


def add_common(parser: argparse.ArgumentParser, submission: bool = True) -> None:
    """The protocol options; `submission` adds those that only concern submissions."""
    p = load_protocol()
    v = f"protocol {p.label}"
    add_root(parser)
    g = parser.add_argument_group("protocol overrides (each makes the result non-standard: shown apart, not ranked)")
    g.add_argument("--runs", type=int, default=None, metavar="N", help=f"independent training runs ({v}: {p.runs})")
    g.add_argument("--seed", type=int, default=None, metavar="S",
                   help=f"seed of the first run; run i uses S+i ({v}: {p.seeds[0]})")
    g.add_argument("--epochs", type=int, default=None, metavar="N",
                   help=f"training epochs ({v}: {p.fixed_epochs} for fixed IPC, the IPC-epoch table for generators)")
    g.add_argument("--precision", choices=PRECISIONS, default=None, help=f"training precision ({v}: {p.precision})")
    presets = "; ".join(f"{name}: " + ", ".join(f"{k}={val}" for k, val in vars(pre).items() if val is not None)
                        for name, pre in p.presets.items())
    g.add_argument("--preset", choices=sorted(p.presets), default=None,
                   help=f"a named set of overrides from the protocol file ({presets})")
    g.add_argument("--protocol", type=Path, default=None, metavar="FILE",
                   help="a protocol file of your own instead of the released one")
    if submission:
        g.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                       help=f"generation budget ({v}: " + ", ".join(f"{d} {b:g} s" for d, b in p.budgets.items()) + ")")
        g.add_argument("--no-sandbox", dest="sandbox", action="store_false",
                       help="run generators without bubblewrap (trusted local runs only)")
        teacher = p.soft_labels.teacher_arch if p.soft_labels else "none"
        g.add_argument("--teacher-arch", default=None, metavar="NAME",
                       help=f"soft-label division: the online teacher's network ({v}: {teacher}, trained by the "
                            f"harness with the protocol's recipe like it)")
    a = parser.add_argument_group("what to train (each architecture is its own result, not a deviation)")
    a.add_argument("--arch", action="append", default=None, metavar="NAME",
                   help=f"network, repeatable: {', '.join(['convnet', *p.cross_archs])}, cross (= "
                        f"{' '.join(p.cross_archs)}), or timm:<model> (default {p.challenge_arch}, the challenge's)")
    r = parser.add_argument_group("how to run (not a deviation: recorded, must not change results beyond noise)")
    r.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default auto)")
    r.add_argument("--compile", dest="compile", action="store_true", default=None,
                   help="torch.compile the network (default: where it pays)")
    r.add_argument("--no-compile", dest="compile", action="store_false")
    if submission:
        r.add_argument("--force", action="store_true", help="re-evaluate although an identical result exists")
        anytime = ", ".join(p.clock.anytime_datasets) if p.clock else "none"
        r.add_argument("--anytime", dest="anytime", action="store_true", default=None,
                       help="also score a generator's images at fractions of its budget, the anytime curve "
                            f"(unranked rows and a chart; default on for: {anytime})")
        r.add_argument("--no-anytime", dest="anytime", action="store_false")
        r.add_argument("--wait", type=float, default=300.0, metavar="SECONDS",
                       help="how long to wait for a device that other processes are using before a generation "
                            "(default 300; then it runs all the same; 0: no check, the contention rule still applies)")
        r.add_argument("--no-wait", dest="wait", action="store_const", const=None,
                       help="refuse to generate on a busy device instead of waiting")
        r.add_argument("--json", action="store_true", help="print every recorded row as a JSON line on stdout")
        r.add_argument("--no-references", dest="references", action="store_false",
                       help="do not evaluate the reference rows that standard results are read against (random "
                            "real images at each IPC scored, the whole training set) when they are missing")


def _arch(name: str | None) -> str | None:
    from evaluator.errors import ArchitectureError
    from evaluator.recipe import check_name

    from ..errors import UsageError

    try:
        return None if name is None else check_name(name)
    except ArchitectureError as exc:
        raise UsageError(str(exc).replace("--arch", "--teacher-arch")) from None


def protocol_of(args: argparse.Namespace) -> Protocol:
    return load_protocol_file(args.protocol) if args.protocol else load_protocol()


def options(args: argparse.Namespace) -> Options:
    overrides = Overrides(runs=args.runs, seed=args.seed, precision=args.precision, epochs=args.epochs,
                          budget=getattr(args, "budget", None), sandbox=getattr(args, "sandbox", True),
                          preset=args.preset, teacher_arch=_arch(getattr(args, "teacher_arch", None)))
    return Options(protocol=protocol_of(args), overrides=overrides, root=args.root.resolve() if args.root else None,
                   device=resolve_device(args.device), force=getattr(args, "force", False), compile=args.compile,
                   arch_names=tuple(args.arch or ()), anytime=getattr(args, "anytime", None),
                   wait=getattr(args, "wait", 300.0))


def exit_status(outcomes: list, as_json: bool = False) -> int:
    """1 when any evaluation was invalid or failed; a summary line either way; with as_json, each
    outcome's row on stdout."""
    import json

    from ..scoring import SKIPPED

    if as_json:
        for o in outcomes:
            if o.result is not None:
                print(json.dumps(o.result.with_text_cleaned().to_json()), flush=True)

    failed = [o for o in outcomes if o.failed]
    if outcomes:
        done = sum(not o.failed and o.status != SKIPPED for o in outcomes)
        skipped = sum(o.status == SKIPPED for o in outcomes)
        info(f"{done} evaluated, {skipped} skipped (already evaluated), {len(failed)} invalid or failed")
    return 1 if failed else 0


def run_tasks(opts: Options, make_tasks: Callable[[Options], list], as_json: bool = False,
              references: bool = True) -> int:
    """Evaluate the command's tasks: here, one after the other; or, started by torchrun or
    accelerate launch, spread over all processes (only the main one records and reports). Then,
    with `references`, the reference rows its standard results are read against, where missing."""
    from .. import distributed, leaderboard
    from ..baseline import reference_tasks
    from ..tracks import execute

    def results(outcomes: list) -> list:
        return [o.result for o in outcomes] if references else []

    if not distributed.launched():
        try:
            outcomes = execute(opts, make_tasks(opts))
            refs = reference_tasks(opts, results(outcomes))
            if refs:
                info(f"reference rows for {', '.join(sorted({t.name.split('/')[1] for t in refs}))} "
                     f"(evaluated where missing; --no-references skips them)")
            return exit_status(outcomes + execute(replace(opts, force=False), refs), as_json)
        finally:
            leaderboard.refresh(opts.project)  # once per command, also when it was interrupted
    workers = distributed.Workers.start(opts.device)
    opts = replace(opts, device=workers.device)
    outcomes = distributed.execute(opts, make_tasks(opts), workers)
    wanted = workers.broadcast(results(outcomes) if workers.is_main else None)  # every process builds the same tasks
    outcomes += distributed.execute(replace(opts, force=False), reference_tasks(opts, wanted), workers)
    if not workers.is_main:
        return 0
    leaderboard.refresh(opts.project)
    return exit_status(outcomes, as_json)
