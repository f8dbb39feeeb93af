"""bench data list | download NAME | prepare NAME [--from PATH] | info NAME"""
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
    if not (st["train"] or st["test"]):
        info(f"not prepared: {ds.missing_message(args.name)}")
        return 0
    d = ds.load_dataset(args.name, data_dir)
    n_train = 0 if d.train_labels is None else len(d.train_labels)
    info(f"location: {st['where']}; train {n_train} images, test {len(d.test_labels)} images")
    for key in ("train_source", "test_source", "source"):
        if key in d.meta:
            info(f"{key.replace('_', ' ')}: {d.meta[key]}")
    shown = ", ".join(f"{k}:{c}" for k, c in enumerate(d.classes[:12]))
    info(f"classes: {shown}{', …' if len(d.classes) > 12 else ''}")
    return 0
