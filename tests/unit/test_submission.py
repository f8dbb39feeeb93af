"""submission.yaml schema, discovery and hashing."""
import pytest
from conftest import add_team

from benchmark.errors import SubmissionError, UsageError
from benchmark.submission import (
    combined_hash,
    discover,
    file_hashes,
    parse_spec,
    submission_folder,
)

GOOD = "team: t\nmethod: m\ntrack: fixed-ipc\ndatasets: [digits]\n"


def spec_error(tmp_path, text):
    folder = add_team(tmp_path, "t", files={}, spec=text)
    with pytest.raises(SubmissionError) as info:
        parse_spec(folder)
    message = str(info.value)
    assert "\n" not in message and "submission.yaml" in message
    return message


def test_good_spec_parses_with_defaults(tmp_path):
    sub = parse_spec(add_team(tmp_path, "t", files={}, spec=GOOD + "contact: a@b.c\n"))
    assert (sub.team, sub.track, sub.datasets, sub.contact, sub.entrypoint) == ("t", "fixed-ipc", ("digits",), "a@b.c", "generate.py")


def test_generative_spec_with_entrypoint_and_args(tmp_path):
    sub = parse_spec(add_team(tmp_path, "t", files={}, spec=GOOD.replace("fixed-ipc", "generative")
                              + "entrypoint: gen.py\nargs: [--steps, 4]\n"))
    assert sub.entrypoint == "gen.py" and sub.args == ("--steps", "4")


@pytest.mark.parametrize("text,fragment", [
    ("team: [unclosed\n", "invalid YAML at line"),
    ("- a\n- b\n", "must be a mapping"),
    (GOOD + "dataset: [x]\n", "unknown key 'dataset' (did you mean 'datasets'?)"),
    ("team: t\nmethod: m\ntrack: fixed-ipc\n", "missing key 'datasets'"),
    (GOOD.replace("[digits]", "digits"), "key 'datasets' must be a list, got str"),
    (GOOD.replace("method: m", "method: 3"), "key 'method' must be a str, got int"),
    (GOOD.replace("fixed-ipc", "fixed"), "key 'track' is 'fixed'; use one of fixed-ipc, generative"),
    (GOOD.replace("team: t", "team: other"), "key 'team' is 'other' but the folder is 't'"),
    (GOOD.replace("[digits]", "[cifar1000]"), "unknown dataset 'cifar1000'"),
    (GOOD.replace("[digits]", "[digits, digits]"), "lists a dataset twice"),
    (GOOD + "entrypoint: gen.py\n", "key 'entrypoint' is only for track: generative"),
    ("", "must be a mapping"),
])
def test_schema_errors_name_the_key_and_the_fix(tmp_path, text, fragment):
    assert fragment in spec_error(tmp_path, text)


def test_missing_spec_file(tmp_path):
    folder = tmp_path / "submissions" / "t"
    folder.mkdir(parents=True)
    with pytest.raises(SubmissionError, match="missing; create it"):
        parse_spec(folder)


def test_data_file_missing_and_ambiguous(tmp_path):
    sub = parse_spec(add_team(tmp_path, "t", files={}, spec=GOOD))
    with pytest.raises(SubmissionError, match="digits.pt: missing"):
        sub.data_file("digits")
    (sub.folder / "digits.pt").write_bytes(b"x")
    (sub.folder / "digits.safetensors").write_bytes(b"x")
    with pytest.raises(SubmissionError, match="several files for digits"):
        sub.data_file("digits")


def test_discovery_and_folder_lookup(tmp_path):
    add_team(tmp_path, "alpha", files={}, spec=GOOD)
    add_team(tmp_path, "beta", files={}, spec=GOOD)
    (tmp_path / "submissions" / ".hidden").mkdir()
    assert discover(tmp_path) == ["alpha", "beta"]
    with pytest.raises(UsageError, match="did you mean 'alpha'"):
        submission_folder(tmp_path, "alpah")
    with pytest.raises(UsageError, match="use letters"):
        submission_folder(tmp_path, "../etc")


def test_hashes_cover_every_file_and_change_with_content(tmp_path):
    folder = add_team(tmp_path, "t", files={"a.pt": b"1"}, spec=GOOD)
    (folder / "weights").mkdir()
    (folder / "weights" / "w.bin").write_bytes(b"2")
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "x.pyc").write_bytes(b"3")
    hashes = file_hashes(folder)
    assert set(hashes) == {"submission.yaml", "a.pt", "weights/w.bin", "__pycache__/x.pyc"}  # every file
    before = combined_hash(hashes)
    (folder / "a.pt").write_bytes(b"changed")
    assert combined_hash(file_hashes(folder)) != before
