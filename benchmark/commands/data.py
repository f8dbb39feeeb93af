"""bench data list | download NAME | prepare NAME [--from PATH] | info NAME | export NAME [--out FILE]"""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table
from rich.text import Text

from ..console import console, info
from ._common import add_root, project_root

# evaluator.data (torch) is imported by each command, not for --help.


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("data", help="list, download, prepare and inspect datasets",
                            description="Datasets: list, download (md5-checked), prepare from a local archive "
                                        "or a challenge reference_data/*_test.pt, info.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    p = verbs.add_parser("list", help="datasets and whether they are prepared")
    add_root(p)
    p.set_defaults(handler=cmd_list)
    for verb, fn, text in (("download", cmd_download, "download the original archive and prepare it"),
                           ("info", cmd_info, "details of one dataset")):
        p = verbs.add_parser(verb, help=text)
        p.add_argument("name")
        add_root(p)
        p.set_defaults(handler=fn)
    p = verbs.add_parser("prepare", help="build the cache from a local archive, folder or reference file")
    p.add_argument("name")
    p.add_argument("--from", dest="source", type=Path, default=None, metavar="PATH",
                   help="the original archive, its unpacked folder, or reference_data/<name>_test.pt "
                        "(default: download)")
    add_root(p)
    p.set_defaults(handler=cmd_prepare)
    p = verbs.add_parser("export", help="write a split's images and labels in the submission format",
                         description="Write a prepared dataset's split as one safetensors file: `images` (uint8 "
                                     "N x 3 x R x R, RGB), `labels` (int64) and the class names in its metadata. "
                                     "It is the format a fixed-IPC submission file uses: a distiller reads it, "
                                     "selects or synthesises 10 images per class, and saves them the same way.")
    p.add_argument("name")
    p.add_argument("--split", choices=("train",), default="train",
                   help="train (the only one: a submission is made from training images; test images in it are "
                        "flagged by the leakage check)")
    p.add_argument("--out", type=Path, default=None, metavar="FILE",
                   help="default <name>-<split>.safetensors in the current folder")
    add_root(p)
    p.set_defaults(handler=cmd_export)


def _data_dir(args: argparse.Namespace) -> Path:
    return project_root(args) / "datasets"


def cmd_list(args: argparse.Namespace) -> int:
    from evaluator import data as ds

    data_dir = _data_dir(args)
    table = Table(title="datasets")
    for col in ("name", "title", "classes", "px", "challenge", "train", "test"):
        table.add_column(col)
    mark = {True: Text("yes", style="green"), False: Text("no", style="red")}
    for name, i in ds.REGISTRY.items():
        st = ds.dataset_status(name, data_dir)
        table.add_row(name, i.title, str(i.num_classes), str(i.resolution), "yes" if i.challenge else "",
                      mark[st["train"]], mark[st["test"]])
    console.print(table)
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from evaluator import data as ds

    info(ds.prepare_dataset(args.name, _data_dir(args)))
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from evaluator import data as ds

    info(ds.prepare_dataset(args.name, _data_dir(args), args.source.expanduser() if args.source else None))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from evaluator import data as ds

    i = ds.get_info(args.name)
    data_dir = _data_dir(args)
    st = ds.dataset_status(args.name, data_dir)
    info(f"{i.name}: {i.title}, {i.num_classes} classes, {i.resolution}x{i.resolution} px"
         f"{', challenge dataset' if i.challenge else ''}")
    info(f"normalisation: mean {i.mean}, std {i.std}")
    if not (st["train"] or st["test"] or i.built):  # a built dataset is built by load_dataset
        info(f"not prepared: {ds.missing_message(args.name)}")
        return 0
    d = ds.load_dataset(args.name, data_dir)
    n_train = 0 if d.train_labels is None else len(d.train_labels)
    info(f"location: {st['where']}; train {n_train} images, test {len(d.test_labels)} images")
    for key in ("train_source", "test_source", "source"):
        if key in d.meta:
            info(f"{key.replace('_', ' ')}: {d.meta[key]}")
    if d.train_images is not None:
        info(f"sha256 of the splits (a protocol's data.{i.name}): {ds.data_digest(d)}")
    shown = ", ".join(f"{k}:{c}" for k, c in enumerate(d.classes[:12]))
    info(f"classes: {shown}{', …' if len(d.classes) > 12 else ''}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import json

    from safetensors.torch import save_file

    from evaluator import data as ds
    from evaluator.atomic import atomic_write

    from ..errors import UsageError

    out = args.out or Path(f"{args.name}-{args.split}.safetensors")
    if out.suffix != ".safetensors":
        raise UsageError(f"--out {out}: the export is a .safetensors file; name it e.g. {out.stem}.safetensors")
    d = ds.load_dataset(args.name, _data_dir(args), need_train=True)
    images, labels = d.train_images, d.train_labels
    metadata = {"dataset": args.name, "split": args.split, "classes": json.dumps(list(d.classes))}
    atomic_write(out, lambda tmp: save_file({"images": images.contiguous(), "labels": labels.contiguous()},
                                            str(tmp), metadata=metadata))
    info(f"{out}: {len(labels)} {args.split} images of {args.name} ({d.info.num_classes} classes, uint8 "
         f"3 x {d.info.resolution} x {d.info.resolution}) and their labels")
    return 0
