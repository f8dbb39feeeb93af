"""Errors the command line turns into exit statuses (DESIGN.md: 1 submission, 2 usage/config)."""


class BenchError(Exception):
    exit_code = 2


class UsageError(BenchError):
    """Bad arguments or configuration: exit 2."""

    exit_code = 2


class SubmissionError(BenchError):
    """A submission is invalid or failed to evaluate: exit 1 (and a status row is recorded)."""

    exit_code = 1
