"""Options shared by several subcommands, and their conversion into one Options object."""
from __future__ import annotations

import argparse
from pathlib import Path

from evaluator.train import PRECISIONS

from ..options import Options, find_root, resolve_device


def add_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", type=Path, default=None, metavar="DIR",
                        help="project root (default: found upwards from the current folder)")


def project_root(args: argparse.Namespace) -> Path:
    """--root, or the project root found upwards from the current folder."""
    return args.root.resolve() if args.root else find_root()


def add_common(parser: argparse.ArgumentParser, submission: bool = True) -> None:
    """The protocol options; `submission` adds those that only concern submissions."""
    add_root(parser)
    g = parser.add_argument_group("protocol options")
    g.add_argument("--runs", type=int, default=3, metavar="N", help="independent training runs (default 3)")
    g.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the first run; run i uses S+i (default 0)")
    g.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default auto)")
    g.add_argument("--epochs", type=int, default=None, metavar="N",
                   help="override the training epochs (quick, non-standard: the row is not ranked)")
    g.add_argument("--precision", choices=PRECISIONS, default="fp32", help="training precision (default fp32)")
    g.add_argument("--compile", dest="compile", action="store_true", default=None,
                   help="torch.compile the network (default: where it pays)")
    g.add_argument("--no-compile", dest="compile", action="store_false")
    if submission:
        g.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                       help="override the generation budget (non-standard: the row is not ranked)")
        g.add_argument("--force", action="store_true", help="re-evaluate although an identical result exists")
        g.add_argument("--no-sandbox", dest="sandbox", action="store_false",
                       help="run generators without bubblewrap (trusted local runs only; recorded, not ranked)")


def options(args: argparse.Namespace) -> Options:
    return Options(
        root=args.root.resolve() if args.root else None,
        runs=args.runs, seed=args.seed, device=resolve_device(args.device), epochs=args.epochs,
        budget=getattr(args, "budget", None), force=getattr(args, "force", False),
        sandbox=getattr(args, "sandbox", True), precision=args.precision, compile=args.compile,
    )
