"""Errors the command line turns into exit statuses (1: a submission is invalid or failed; 2: usage or configuration)."""


class BenchError(Exception):
    exit_code = 2


class UsageError(BenchError):
    """Bad arguments or configuration: exit 2."""

    exit_code = 2


class SubmissionError(BenchError):
    """A submission is invalid or failed to evaluate: exit 1 (and a status row is recorded)."""

    exit_code = 1
