"""The harness: command line, submissions, tracks, the sandboxed generator runner, the leaderboard."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ddbench")
except PackageNotFoundError:  # running from a checkout that is not installed
    __version__ = "0+unknown"
