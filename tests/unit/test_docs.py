"""The user's manual and the guides say what the code does: every command they show parses, every
make target exists, every file they name is there, and the names the extension guides tell a
contributor to edit exist where they say. A rename breaks a test, not a reader."""
import re
import shlex

import pytest
from conftest import ROOT

from benchmark.cli import build_parser

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _code_lines(prefix: str):
    """Lines of the shell code blocks that start with prefix, without their comments."""
    for doc in DOCS:
        lang = None  # None: outside a fenced block
        for line in doc.read_text().splitlines():
            if line.startswith("```"):
                lang = line[3:].strip() if lang is None else None
            elif lang in ("", "bash", "sh"):
                line = re.split(r"\s#\s", line)[0].strip()
                if line.startswith(prefix):
                    yield doc.name, line


BENCH = sorted(set(_code_lines("bench ")))
MAKE = sorted(set(_code_lines("make ")))


@pytest.mark.parametrize("doc,line", BENCH)
def test_every_bench_command_shown_parses(doc, line):
    argv = [a for a in shlex.split(line.replace("[", "").replace("]", ""))[1:]]
    argv = [a for a in argv if a not in ("…", "...")]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"{doc}: `{line}` does not parse (exit {exc.code})")
    assert callable(args.handler)


def test_the_manual_shows_the_commands():
    assert len(BENCH) >= 15 and {"make demo", "make test"} <= {line for _, line in MAKE}


@pytest.mark.parametrize("doc,line", MAKE)
def test_every_make_target_shown_exists(doc, line):
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    assert line.split()[1] in targets, f"{doc}: `{line}`: no such target in the Makefile"


def _named_files():
    for doc in DOCS:
        for name in re.findall(r"`([\w./-]+\.(?:py|md|yaml|toml|txt|csv))`", doc.read_text()):
            yield doc.name, name


ARCHIVE_FILES = {"words.txt", "wnids.txt", "val_annotations.txt"}  # inside Tiny-ImageNet's archive, not here
USER_FILES = {"distill.py"}  # the README's walkthrough has the reader write it (its test runs the README's text)
ELSEWHERE = ARCHIVE_FILES | USER_FILES


@pytest.mark.parametrize("doc,name", sorted(set(_named_files()) - {(d, n) for d, n in _named_files() if n in ELSEWHERE}))
def test_every_file_named_exists(doc, name):
    if "/" in name:
        assert (ROOT / name).exists(), f"{doc} names {name}, which does not exist"
    else:  # a file name (`submission.yaml`, `generate.py`): somewhere in the project
        found = [p for p in ROOT.rglob(name) if ".venv" not in p.parts]
        assert found, f"{doc} names {name}, which no file of the project is called"


# `name` in `module.py`: what the extension guides tell a contributor to edit
GUIDE_NAMES = re.compile(r"`(\w+)`[^`\n]{0,40}?in `([\w/]+\.py)`|in `([\w/]+\.py)`,? `(\w+)`")


def _guide_names():
    for doc in sorted((ROOT / "docs").glob("new_*.md")):
        for m in GUIDE_NAMES.finditer(doc.read_text()):
            name, path = (m[1], m[2]) if m[1] else (m[4], m[3])
            yield doc.name, path, name


@pytest.mark.parametrize("doc,path,name", sorted(set(_guide_names())))
def test_every_name_a_guide_points_to_is_defined_there(doc, path, name):
    source = (ROOT / path).read_text()
    assert re.search(rf"^(def|class) {name}\b|^{name}\b.*=|^\s+def {name}\b", source, re.M), \
        f"{doc}: `{name}` is not defined in {path}"


def test_the_guides_point_somewhere():
    assert len(set(_guide_names())) >= 3


def test_the_protocol_file_the_manual_names_is_the_current_version():
    """The README sends readers to one protocol file for today's values; a new version must move it
    (older versions are named only by their number, in the 'Changed in protocol N' notes)."""
    from benchmark.protocol import current_version

    named = set(re.findall(r"benchmark/protocols/(v\d+)\.yaml", (ROOT / "README.md").read_text()))
    assert named == {f"v{current_version()}"}, f"README names {sorted(named)}; today's file is v{current_version()}.yaml"
    notes = {int(n) for n in re.findall(r"\*Changed in protocol (\d+):\*", (ROOT / "README.md").read_text())}
    assert notes == set(range(2, current_version() + 1)), "a 'Changed in protocol N' note for every version after 1"
