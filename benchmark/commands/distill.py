"""bench distill METHOD --dataset D --out DIR: a classic method's fixed-IPC submission file."""
from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path

from ..console import info
from ..methods import METHODS
from ._common import add_root, project_root


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("distill", help="make a fixed-IPC set with a classic method (herding, DM, DSA)",
                       description="Distil a dataset's training split into IPC images per class with one of the "
                                   "field's classic methods, and write it as <out>/<dataset>.safetensors, a fixed-IPC "
                                   "submission file. Deterministic for a seed on one machine. "
                                   + " ".join(f"{k}: {v}." for k, v in METHODS.items()))
    p.add_argument("method", choices=sorted(METHODS))
    p.add_argument("--dataset", default="photodigits", help="a prepared dataset (default: photodigits)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="the submission folder to write into")
    p.add_argument("--ipc", type=int, default=None, metavar="N", help="images per class (default: the protocol's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--iterations", type=int, default=None, metavar="N",
                   help="dm: 1000, dsa: 20 (the papers use 20000 and 1000 on a GPU); herding: training epochs, 10")
    add_root(p)
    p.set_defaults(handler=cmd_distill)


def cmd_distill(args: argparse.Namespace) -> int:
    import torch

    from ..errors import UsageError
    from ..methods import common
    from ..options import Options
    from ..protocol import load_protocol

    protocol = load_protocol()
    ipc = protocol.fixed_ipc if args.ipc is None else args.ipc
    if ipc < 1 or (args.iterations is not None and args.iterations < 1):
        raise UsageError("--ipc and --iterations must be positive integers")
    if not args.out.is_dir():
        raise UsageError(f"--out {args.out}: not a folder; create the submission folder first (mkdir -p {args.out})")
    ds = Options(protocol, root=project_root(args)).dataset(args.dataset, need_train=True)  # the protocol's data
    src = common.Source(args.dataset, ds.normalize(ds.train_images), ds.train_labels, ds.info.num_classes,
                        ds.info.mean, ds.info.std, protocol.recipe.augmentation, protocol.challenge_arch)
    if ipc > ds.smallest_class:
        raise UsageError(f"--ipc {ipc}: a class of {args.dataset} has only {ds.smallest_class} training images")
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    extra = {} if args.iterations is None else {"epochs" if args.method == "herding" else "iterations": args.iterations}
    module = importlib.import_module(f"benchmark.methods.{args.method}")
    images, labels = module.distill(src, ipc, args.seed, log=info, **extra)
    meta = {"method": args.method, "dataset": args.dataset, "ipc": str(ipc), "seed": str(args.seed),
            "settings": repr(extra or "defaults"), "protocol": protocol.label, "torch": torch.__version__}
    path = common.save(src, images, labels, args.out, meta)
    info(f"{path}: {len(labels)} images ({ipc} per class) by {args.method} in {time.perf_counter() - start:.0f} s")
    return 0
