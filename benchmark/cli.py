"""bench: the command line of the dataset-distillation harness.

examples:
  bench data list
  bench data download cifar100
  bench data prepare tinyimagenet --from ~/Downloads/tiny-imagenet-200.zip
  bench evaluate cifar100.pt --test reference_data/cifar100_test.pt --json
  bench evaluate images.pt --dataset digits --preset quick      # a smoke test, non-standard
  bench submit mel                                              # = make submit TEAM=mel
  bench run --track generative --dataset digits
  bench baseline random --dataset cifar100
  bench leaderboard
  bench results check
"""
from __future__ import annotations

import argparse
import sys

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


if __name__ == "__main__":
    sys.exit(main())
