"""bench: the command line of the dataset-distillation harness.

examples:
  bench data list
  bench data download cifar100
  bench data prepare tinyimagenet --from ~/Downloads/tiny-imagenet-200.zip
  bench data export digits --out digits-train.safetensors      # the training images, submission format
  bench evaluate cifar100.pt --test reference_data/cifar100_test.pt --json
  bench evaluate images.pt --dataset digits --preset quick      # a smoke test, non-standard
  bench submit mel                                              # = make submit TEAM=mel
  bench run --track generative --dataset digits
  bench baseline random --dataset cifar100
  bench leaderboard
  bench results check
  bench calibrate --dataset digits --repeat 5                   # this device's score for the generation clock
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from evaluator.errors import DatasetError, EvaluatorError, ImageFileError

from . import __version__
from .commands import COMMANDS
from .console import error
from .errors import BenchError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"bench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = None
    try:
        args = build_parser().parse_args(argv)  # defaults and help come from the protocol file
        return int(args.handler(args) or 0)
    except BenchError as exc:
        error(str(exc))
        return exc.exit_code
    except ImageFileError as exc:
        error(str(exc))
        return 1
    except (DatasetError, EvaluatorError) as exc:
        error(str(exc))
        return 2
    except KeyboardInterrupt:
        error("interrupted; finished runs are kept, run the same command again to resume")
        return 130
    except Exception as exc:  # noqa: BLE001 — a fault of the harness itself: exit 2, the traceback kept
        error(f"internal error of the harness ({type(exc).__name__}: {exc}); nothing was blamed on a team; "
              f"the traceback is in {_log_traceback(getattr(args, 'root', None))}; please report it")
        return 2


def _log_traceback(root: Path | None) -> str:
    """The current exception's traceback, in leaderboard/.runs/logs/ of the project (or the
    temporary folder outside one); returns where."""
    import tempfile
    import time
    import traceback

    from .options import find_root

    try:
        folder = (root.resolve() if root else find_root()) / "leaderboard" / ".runs" / "logs"
    except BenchError:
        folder = Path(tempfile.gettempdir()) / "ddbench-logs"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"harness-error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        path.write_text(f"bench {' '.join(sys.argv[1:])}\n\n{traceback.format_exc()}")
        return str(path)
    except OSError:
        return "(could not be written: see above)"


if __name__ == "__main__":
    sys.exit(main())
