"""Text from submissions is data: bounded, one line, no control characters or escape codes, and
escaped for wherever it goes (Markdown/HTML here; the terminal prints it without markup).

Anything a team controls — YAML fields, file names, a generator's output, exception messages
about their files — passes through `plain` before it is stored, printed or rendered.
"""
from __future__ import annotations

import html
import re
from pathlib import Path

# ANSI/VT escape sequences (CSI, OSC, and two-character escapes), then any other control character.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")
# Markdown specials that could make links, emphasis, code or new table cells (< > & become entities).
_MARKDOWN = re.compile(r"([\\`*_\[\]|~])")


def plain(text: object, limit: int = 300) -> str:
    """One line of at most `limit` characters, escape codes and control characters removed."""
    flat = _CONTROLS.sub(" ", _ESCAPES.sub("", str(text)))
    flat = " ".join(flat.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def markdown_cell(text: object, limit: int = 300) -> str:
    """Safe inside a Markdown table cell and as HTML: no raw tags, links, emphasis or pipes."""
    return _MARKDOWN.sub(r"\\\1", html.escape(plain(text, limit), quote=True))


def relative_paths(text: str, root: Path | None) -> str:
    """Host paths shown relative to the project root (and the home folder as ~)."""
    if root is not None:
        text = text.replace(str(Path(root).resolve()) + "/", "").replace(str(root) + "/", "")
    home = str(Path.home())
    return text.replace(home + "/", "~/") if home not in ("/", "") else text
