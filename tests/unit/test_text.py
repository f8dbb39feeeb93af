"""Text a team controls: one bounded line, no escape codes, escaped for Markdown and HTML."""
from benchmark.text import markdown_cell, plain, relative_paths


def test_plain_is_one_bounded_line_without_control_characters_or_escape_codes():
    text = "a\x1b[31mred\x1b[0m\x1b]0;title\x07 b\nc\r\td\u202eevil\x00"
    assert plain(text) == "ared b c d evil"
    assert len(plain("x" * 1000, limit=50)) == 50 and plain("x" * 1000, limit=50).endswith("…")


def test_markdown_cells_cannot_make_html_links_emphasis_code_or_new_cells():
    cell = markdown_cell("<img src=x onerror=alert(1)> [a](http://e) *b* _c_ `d` e|f \\ & ~g~")
    assert "<" not in cell and ">" not in cell and "&lt;img" in cell and "&amp;" in cell
    for special in ("[", "]", "*", "_", "`", "|", "~"):
        assert cell.count(special) == cell.count("\\" + special), special  # every one escaped


def test_host_paths_become_relative(tmp_path):
    assert relative_paths(f"{tmp_path}/submissions/a/x.pt: bad", tmp_path) == "submissions/a/x.pt: bad"


def test_no_autolinks_and_no_invisible_characters():
    cell = markdown_cell("https://evil.example/login www.evil.example x@evil.example")
    assert "https://" not in cell and "www." not in cell and "x@" not in cell
    assert plain("a\u2060b\u061cc\u00add\U000e0041e\u3164f\ud800g") == "a b c d e f g"
