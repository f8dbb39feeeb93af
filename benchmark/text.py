"""Text from submissions is data: bounded, one line, no control characters or escape codes, and
escaped for wherever it goes (Markdown/HTML here; the terminal prints it without markup).

Anything a team controls — YAML fields, file names, a generator's output, exception messages
about their files — passes through `plain` before it is stored, printed or rendered.
"""
from __future__ import annotations

import html
import re
import unicodedata
from pathlib import Path

# ANSI/VT escape sequences (CSI, OSC, and two-character escapes).
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]")
# Invisible characters that are not Unicode format/control characters: fillers and joiners.
_INVISIBLE = set("\u034f\u115f\u1160\u17b4\u17b5\u180e\u3164\uffa0") | {chr(c) for c in range(0xFE00, 0xFE10)}
# Markdown specials that could make links, emphasis, code or new table cells (< > & become entities).
_MARKDOWN = re.compile(r"([\\`*_\[\]|~])")
SPREADSHEET_FORMULA = ("=", "+", "-", "@")  # a cell starting so is run as a formula by spreadsheets


def _visible(ch: str) -> bool:
    # Cc control, Cf format (bidi marks, zero-width, soft hyphen, tags), Cs lone surrogates,
    # Co private use, Cn unassigned, Zl/Zp line and paragraph separators
    return unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") and ch not in _INVISIBLE


def plain(text: object, limit: int = 300) -> str:
    """One line of at most `limit` characters: escape codes removed, every control, format,
    surrogate or invisible character made a space, whitespace collapsed."""
    flat = "".join(ch if ch == " " or _visible(ch) else " " for ch in _ESCAPES.sub("", str(text)))
    flat = " ".join(flat.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def defused(text: str) -> str:
    """Text a spreadsheet opening results.csv would not run as a formula."""
    return "'" + text if text.startswith(SPREADSHEET_FORMULA) else text


def markdown_cell(text: object, limit: int = 300) -> str:
    """Safe inside a Markdown table cell and as HTML: no raw tags, links (also GitHub's autolinks
    of bare URLs, www. addresses and e-mail addresses), emphasis, code or pipes."""
    cell = _MARKDOWN.sub(r"\\\1", html.escape(plain(text, limit), quote=True))
    cell = re.sub(r":(?=//)", r"\\:", cell)
    cell = re.sub(r"(?i)\b(www)\.", r"\1\\.", cell)
    return cell.replace("@", "<!-- -->@")


def relative_paths(text: str, root: Path | None) -> str:
    """Host paths shown relative to the project root (and the home folder as ~)."""
    if root is not None:
        text = text.replace(str(Path(root).resolve()) + "/", "").replace(str(root) + "/", "")
    home = str(Path.home())
    return text.replace(home + "/", "~/") if home not in ("/", "") else text
