"""bench teacher train DATASET | label DATASET FILE --out FILE: the soft-label division's teachers."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..console import info
from ._common import add_root, project_root


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("teacher", help="train the harness's teacher, or label images with it (soft-label division)",
                       description="The soft-label division's teacher: the protocol's network trained on the whole "
                                   "training split with the protocol's recipe (soft_labels.teacher), cached under "
                                   "datasets/cache/teachers/ and the same for every submission. bench submit trains "
                                   "it on first use; `train` does it ahead, `label` writes a submission file with "
                                   "its soft labels.")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    t = verbs.add_parser("train", help="train (or read back) a dataset's teacher and print its accuracy and cost")
    t.add_argument("dataset")
    t.add_argument("--arch", default=None, metavar="NAME",
                   help="another network than the protocol's (soft_labels.teacher.arch); bench submit "
                        "--teacher-arch NAME has it label online rows, which are then non-standard")
    t.add_argument("--retrain", action="store_true", help="train again although a cached teacher exists")
    _device(t)
    t.set_defaults(handler=cmd_train)
    la = verbs.add_parser("label", help="add the teacher's soft labels to an image file (stored labels)",
                          description="Read a fixed-IPC image file (uint8 or normalised float images with labels, "
                                      "or the official layout), and write it with the protocol teacher's class "
                                      "distributions at the protocol's temperature, on the images as they are (not "
                                      "augmented): `soft_labels`, or with --top-k the pair soft_values/soft_indices.")
    la.add_argument("dataset")
    la.add_argument("file", type=Path)
    la.add_argument("--out", type=Path, required=True, metavar="FILE", help="a .safetensors file to write")
    la.add_argument("--top-k", type=int, default=None, metavar="K", help="store only the K largest probabilities")
    _device(la)
    la.set_defaults(handler=cmd_label)


def _device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default auto)")
    add_root(p)


def _options(args: argparse.Namespace):
    from ..options import Options, resolve_device
    from ..protocol import load_protocol

    return Options(load_protocol(), root=project_root(args), device=resolve_device(args.device))


def cmd_train(args: argparse.Namespace) -> int:
    from evaluator.recipe import check_name

    from .. import teacher

    opts = _options(args)
    t = teacher.obtain(opts, args.dataset, check_name(args.arch) if args.arch else None, retrain=args.retrain)
    info(f"teacher {t.dataset}/{t.arch}: {t.accuracy:.2f} % on the test split, {t.parameters:,} parameters, "
         f"{t.flops_per_image / 1e6:.1f} MFLOPs per image forward, trained "
         f"in {t.train_seconds:.0f} s on {t.device}; weights sha256 {t.digest[:16]}; {t.path}")
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    from safetensors.torch import save_file

    from evaluator.atomic import atomic_write
    from evaluator.errors import ImageFileError
    from evaluator.files import load_image_set

    from .. import teacher
    from ..errors import UsageError

    opts = _options(args)
    soft = opts.protocol.soft_labels
    if soft is None:
        raise UsageError(f"protocol {opts.protocol.label} has no soft-label division")
    if args.out.suffix != ".safetensors":
        raise UsageError(f"--out {args.out}: write a .safetensors file, e.g. {args.out.stem}.safetensors")
    ds = opts.dataset(args.dataset)
    c = ds.info.num_classes
    if args.top_k is not None and not 1 <= args.top_k < c:
        raise UsageError(f"--top-k {args.top_k}: give 1 to {c - 1} (without it every class is stored)")
    try:
        image_set = load_image_set(args.file, c, ds.info.resolution, opts.protocol.max_ipc * c)
    except ImageFileError as exc:
        raise UsageError(str(exc)) from None
    t = teacher.obtain(opts, args.dataset)
    probs = teacher.soft_labels(t, image_set.normalized(ds.info.mean, ds.info.std), soft.temperature, opts.device)
    tensors = {"images": image_set.images.contiguous(), "labels": image_set.labels.contiguous()}
    if args.top_k is None:
        tensors["soft_labels"] = probs.contiguous()
    else:
        top = probs.topk(args.top_k, dim=1)
        tensors.update(soft_values=top.values.contiguous(), soft_indices=top.indices.contiguous())
    meta = {"dataset": args.dataset, "teacher": t.digest, "temperature": f"{soft.temperature:g}",
            "protocol": opts.protocol.label, "top_k": str(args.top_k or c)}
    atomic_write(args.out, lambda tmp: save_file(tensors, str(tmp), metadata=meta))
    agree = float((probs.argmax(1) == image_set.labels).float().mean()) * 100
    info(f"{args.out}: {len(probs)} images with the teacher's soft labels (T = {soft.temperature:g}, "
         f"{'all' if args.top_k is None else f'top {args.top_k} of'} {c} classes); its top class agrees with the "
         f"hard label on {agree:.0f} %")
    return 0
