"""bench evaluate FILE (--dataset D | --test REFERENCE.pt): score one image tensor file.

The file is scored under the fixed-IPC track's protocol (epochs, runs, precision) whatever its
IPC; the result is the same record a leaderboard row holds (`--json` prints it).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table

from ..console import console, info, pass_progress, run_line, warn
from ..errors import UsageError
from ..options import Options
from ._common import add_common, options

if TYPE_CHECKING:  # torch and the core are imported by the command, not for its --help
    from ..results import Result


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
    parser.add_argument("--json", action="store_true",
                        help="print the result record as JSON on stdout (one line per architecture)")
    add_common(parser, submission=False)
    parser.set_defaults(handler=cmd_evaluate)


def _test_set(args: argparse.Namespace, d):
    """(test images normalised, labels, classes, dataset info or None, dataset label); d: the
    --dataset's data (None with --test)."""
    from evaluator import data as ds

    if d is not None:
        return d.normalized_test, d.test_labels, d.info.num_classes, d.info, args.dataset
    images, labels = ds.read_reference_test(args.test)
    return images, labels, int(labels.max()) + 1, ds.match_reference(images, labels), f"reference:{args.test.name}"


def _leakage(args: argparse.Namespace, opts: Options, image_set, d) -> dict:
    """The leakage check's fields, with --dataset (a reference test file comes without the
    training split the check compares with: not checked)."""
    from evaluator.leakage import check_leakage
    from evaluator.normalize import denormalize

    params = opts.protocol.leakage
    if d is None or params is None:
        return {}
    pixels = image_set.images if image_set.is_uint8 else denormalize(image_set.images, d.info.mean, d.info.std)
    report = check_leakage(pixels, image_set.labels, d.test_images, d.test_labels, d.train_images, params)
    if report.matched:
        warn(f"{args.file}: {report.matched} of {report.checked} images are near copies of {args.dataset} test images"
             f"{' (flagged: a leaderboard would not rank this)' if report.flagged else ''}")
    return {"leaked": report.matched, "flagged": report.flagged}


def cmd_evaluate(args: argparse.Namespace) -> int:
    from evaluator.evaluate import evaluate
    from evaluator.files import load_image_set
    from evaluator.train import Task

    from ..scoring import describe, result_of
    from ..submission import file_sha256

    opts = options(args)
    d = None if args.test is not None else opts.dataset(args.dataset, need_train=opts.protocol.leakage is not None)
    test_x, test_y, num_classes, info_, label = _test_set(args, d)
    image_set = load_image_set(args.file, num_classes, test_x.shape[-1], opts.protocol.max_ipc * num_classes)
    if image_set.is_uint8 and info_ is None:
        raise UsageError(f"{args.file}: uint8 images need the dataset's normalisation, and no known dataset has "
                         f"{num_classes} classes at {test_x.shape[-1]} px; save pre-normalised floats")
    x = image_set.normalized(*opts.protocol.stats(info_.name)) if image_set.is_uint8 else image_set.images
    task = Task(x, image_set.labels, test_x, test_y, num_classes)
    counts = image_set.class_counts(num_classes)
    fields = describe(opts, opts.protocol.fixed_epochs, team="", method="", track="", dataset=label,
                      submission_sha256=file_sha256(args.file), **_leakage(args, opts, image_set, d))
    for arch in opts.archs:  # one result (one JSON line) per architecture
        cfg = opts.train_config(opts.protocol.fixed_epochs, arch)
        with pass_progress(f"{args.file.name} / {arch}", opts.runs * cfg.passes, enabled=not args.json) as on_pass:
            ev = evaluate(task, cfg, opts.seeds, on_pass=on_pass,
                          on_run=lambda run: run_line(f"{arch} seed {run.seed}: {run.accuracy:.2f} %"))
        result = result_of(fields, int(counts.min()), len(image_set.labels), ev, cfg)
        if args.json:
            print(json.dumps(result.with_text_cleaned().to_json()), flush=True)
        else:
            _print(args.file, result, ev)
    return 0


def _print(file: Path, r: Result, ev) -> None:
    table = Table(title=f"{file} on {r.dataset}, {r.arch} ({r.parameters:,} parameters)")
    for col in ("run", "seed", "accuracy %", "seconds"):
        table.add_column(col, justify="right")
    for i, run in enumerate(ev.runs):
        table.add_row(str(i), str(run.seed), f"{run.accuracy:.2f}", f"{run.seconds:.1f}")
    console.print(table)
    ci = f", 95 % CI ± {r.acc_ci95:.2f}" if r.acc_ci95 is not None else ""
    note = "" if r.standard else f" (non-standard: {r.nonstandard})"
    spread = f" ± {r.acc_std:.2f} % (sample std{ci}) over {r.runs} runs" if r.runs > 1 else " % (one run)"
    info(f"accuracy {r.acc_mean:.2f}{spread}, {r.epochs} epochs"
         f"{note}; per-class spread {r.class_spread:.1f}; {r.device}, {r.eval_seconds:.1f} s", style="bold")
