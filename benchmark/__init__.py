"""The harness: command line, submissions, tracks, the sandboxed generator runner, the leaderboard."""
import os
from importlib.metadata import PackageNotFoundError, version

# Set before torch loads OpenMP (it reads the environment once). Evaluation on a CPU is many small
# tensor operations; at each one libgomp's threads spin about 300,000 times by default waiting for
# each other, so a process whose cores are shared (two evaluations at once, a busy machine) waits
# a time slice per operation: on 2 cores, training 9x and the leakage check 100x slower. A short
# spin costs nothing measurable alone and lets processes share (perf/cpu_sharing.py). A wait
# policy the user set is kept.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")

try:
    __version__ = version("ddbench")
except PackageNotFoundError:  # running from a checkout that is not installed
    __version__ = "0+unknown"
