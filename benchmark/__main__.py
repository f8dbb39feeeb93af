"""python -m benchmark …: the same command line as `bench` (what torchrun and accelerate start)."""
import sys

from .cli import main

sys.exit(main())
