"""Errors of the scoring core. Every message is one line: what is wrong, where, and the fix."""


class EvaluatorError(Exception):
    """Base class: a problem the user can fix (bad file, missing data)."""


class ImageFileError(EvaluatorError, ValueError):
    """An image tensor file (a submission, a generator shard) is unreadable or invalid."""


class DatasetError(EvaluatorError):
    """A dataset is unknown, missing, or its files are corrupt."""


class ArchitectureError(EvaluatorError):
    """An unknown architecture, or one that cannot take the dataset's images."""


def one_line(text: object, limit: int = 300) -> str:
    """Collapse any message to a single line of bounded length."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
