"""bench evaluate FILE (--dataset D | --test REFERENCE.pt): score one image tensor file."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rich.table import Table

from evaluator import data as ds
from evaluator.evaluate import Evaluation, evaluate
from evaluator.files import load_image_set
from evaluator.train import TrainConfig, should_compile

from ..options import Options, device_name
from ..console import console, pass_progress
from ..errors import UsageError
from ._common import add_common, options

FIXED_EPOCHS = 1000


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "evaluate", help="train the evaluation ConvNet on an image tensor file and report test accuracy",
        description="Score one tensor file (official float N x 3 x H x W, or a dict/.safetensors with images "
                    "and labels). With --test the classes and resolution come from the challenge's reference "
                    "file, exactly as the official scorer does.")
    parser.add_argument("file", type=Path)
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", help="test on this dataset's prepared test split")
    src.add_argument("--test", type=Path, metavar="REFERENCE.pt",
                     help="test on a challenge reference file (dict with images_val, labels_val)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    add_common(parser, submission=False)
    parser.set_defaults(handler=cmd_evaluate)


def _test_set(args: argparse.Namespace, opts: Options):
    """(test images normalised, labels, classes, resolution, dataset info or None)."""
    if args.test is None:
        d = ds.load_dataset(args.dataset, opts.data_dir)
        return d.normalize(d.test_images), d.test_labels, d.info.num_classes, d.info.resolution, d.info
    images, labels = ds.read_reference_test(args.test)
    return images, labels, int(labels.max()) + 1, images.shape[-1], ds.match_reference(images, labels)


def cmd_evaluate(args: argparse.Namespace) -> int:
    opts = options(args)
    test_x, test_y, num_classes, resolution, info = _test_set(args, opts)
    image_set = load_image_set(args.file, num_classes, resolution)
    if image_set.is_uint8 and info is None:
        raise UsageError(f"{args.file}: uint8 images need the dataset's normalisation, and no known dataset has "
                         f"{num_classes} classes at {resolution} px; save pre-normalised floats")
    x = image_set.normalized(info.mean, info.std) if image_set.is_uint8 else image_set.images
    cfg = opts.train_config(FIXED_EPOCHS)
    started = time.perf_counter()
    with pass_progress(f"training {args.file.name}", opts.runs * cfg.passes, enabled=not args.json) as on_pass:
        ev = evaluate(x, image_set.labels, test_x, test_y, num_classes, cfg, opts.runs, opts.seed, on_pass=on_pass)
    seconds = time.perf_counter() - started
    report = _report(args, opts, cfg, ev, len(image_set.labels), num_classes, seconds)
    if args.json:
        print(json.dumps(report))
    else:
        _print(report)
    return 0


def _report(args, opts: Options, cfg: TrainConfig, ev: Evaluation, n_images: int, num_classes: int, seconds: float) -> dict:
    return {
        "file": str(args.file),
        "dataset": args.dataset,
        "test": str(args.test) if args.test else None,
        "images": n_images,
        "classes": num_classes,
        "acc_runs": [round(a, 4) for a in ev.accuracies],
        "acc_mean": round(ev.mean, 4),
        "acc_std": round(ev.std, 4),
        "class_spread": round(ev.class_spread, 4),
        "acc_per_class": [round(a, 2) for a in ev.per_class_mean],
        "seeds": [r.seed for r in ev.runs],
        "run_seconds": [round(r.seconds, 2) for r in ev.runs],
        "epochs": ev.epochs,
        "standard": opts.epochs is None,
        "device": device_name(opts.device),
        "precision": opts.precision,
        "compiled": should_compile(cfg, n_images),
        "seconds": round(seconds, 2),
    }


def _print(report: dict) -> None:
    table = Table(title=f"{report['file']} on {report['dataset'] or report['test']}")
    for col in ("run", "seed", "accuracy %", "seconds"):
        table.add_column(col, justify="right")
    for i, (seed, acc, sec) in enumerate(zip(report["seeds"], report["acc_runs"], report["run_seconds"])):
        table.add_row(str(i), str(seed), f"{acc:.2f}", f"{sec:.1f}")
    console.print(table)
    note = "" if report["standard"] else " [yellow](non-standard epochs)[/]"
    console.print(f"[bold]accuracy {report['acc_mean']:.2f} ± {report['acc_std']:.2f} %[/] over {len(report['seeds'])} "
                  f"runs, {report['epochs']} epochs{note}; per-class spread {report['class_spread']:.1f}; "
                  f"{report['device']}, {report['seconds']:.1f} s")
