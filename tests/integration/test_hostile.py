"""One team can never stop, slow or fool the evaluation of the others: hostile text, folders,
files and a damaged results.csv, each through the real command line."""
import io
import json
import os
import struct
import zipfile

import pytest
import torch
from conftest import QUICK, add_generator, add_team, board, read_results

from benchmark import tracks
from benchmark.cli import main


def spec(team, method="m", track="fixed-ipc", extra=""):
    return f"team: {team}\nmethod: {json.dumps(method)}\ntrack: {track}\ndatasets: [digits]\n{extra}"


# -- text from submissions is data -----------------------------------------------------------------

HOSTILE = "[/bold] [red]x[/] <img src=x onerror=alert(1)> | `code` *em* \x1b[31mred\x1b[0m \x07"


def test_markup_html_and_escape_codes_in_text_are_plain_data(project, capsys):
    add_team(project, "mark", spec=spec("mark", HOSTILE))
    add_team(project, "html", spec=spec("html", extra=f"{json.dumps(HOSTILE)}: 1\n"))  # an unknown key
    add_team(project, "after")
    assert main(["validate", "mark", "--root", str(project)]) == 0
    assert main(["run", "--track", "fixed-ipc", "--root", str(project), *QUICK]) == 0
    assert main(["submit", "html", "--root", str(project), *QUICK]) == 1  # its row quotes the key
    assert main(["leaderboard", "--root", str(project)]) == 0
    assert sorted(r["team"] for r in read_results(project)) == ["after", "html", "mark"]
    err = capsys.readouterr().err
    assert "\x1b[31m" not in err and "\x07" not in err and "Traceback" not in err
    text = board(project)
    assert "<img" not in text and "&lt;img src=x onerror" in text
    assert "\x1b" not in text
    [row] = [r for r in read_results(project) if r["team"] == "mark"]
    assert "\x1b" not in row["method"] and "\x07" not in row["method"] and "[/bold]" in row["method"]


def test_overlong_text_is_refused_at_the_input_and_every_later_command_works(project):
    add_team(project, "long", spec=spec("long", "x" * 1000))
    add_team(project, "huge", spec=spec("huge", "x" * 1_000_000))
    assert main(["submit", "long", "--root", str(project), *QUICK]) == 1
    assert main(["submit", "huge", "--root", str(project), *QUICK]) == 1
    long, huge = read_results(project)
    assert long["status"] == "invalid" and "'method' is 1000 characters long; at most 200" in long["error"]
    assert huge["status"] == "invalid" and "larger than 64 KiB" in huge["error"]
    add_team(project, "after")
    assert main(["submit", "after", "--root", str(project), *QUICK]) == 0
    assert main(["leaderboard", "--root", str(project)]) == 0 and main(["results", "check", "--root", str(project)]) == 0


def test_host_paths_are_shown_relative_to_the_project(project):
    add_team(project, "gone", files={})
    assert main(["submit", "gone", "--root", str(project), *QUICK]) == 1
    [row] = read_results(project)
    assert str(project) not in row["error"] and row["error"].startswith("submissions/gone/digits.pt: missing")


# -- a submission folder is closed -----------------------------------------------------------------

@pytest.mark.parametrize("target", ["other team", "outside", "folder"])
def test_symlinks_are_refused_and_never_followed(project, tmp_path, target):
    add_team(project, "victim")
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET CONTENT")
    folder = add_team(project, "thief", files={})
    if target == "other team":
        (folder / "digits.safetensors").symlink_to("../victim/digits.safetensors")
    elif target == "outside":
        (folder / "digits.pt").symlink_to(secret)
    else:
        (folder / "data").symlink_to(tmp_path)
    assert main(["submit", "thief", "--root", str(project), *QUICK]) == 1
    [row] = read_results(project)
    assert row["status"] == "invalid" and "symbolic link" in row["error"] and "SECRET" not in row["error"]
    assert main(["validate", "thief", "--root", str(project)]) == 1


def test_a_team_folder_that_is_a_symlink_is_refused(project):
    add_team(project, "real")
    (project / "submissions" / "alias").symlink_to(project / "submissions" / "real")
    (project / "submissions" / "real" / "submission.yaml").write_text(spec("alias"))
    assert main(["submit", "alias", "--root", str(project), *QUICK]) == 1
    assert "symbolic link" in read_results(project)[0]["error"]


def test_a_bad_folder_name_is_skipped_and_the_others_run(project, capsys):
    add_team(project, "good")
    (project / "submissions" / "bad name").mkdir()
    (project / "submissions" / "bad name" / "submission.yaml").write_text(spec("bad name"))
    assert main(["run", "--track", "fixed-ipc", "--root", str(project), *QUICK]) == 0
    assert [r["team"] for r in read_results(project)] == ["good"]
    assert "skipping submissions/bad name: not a team name" in capsys.readouterr().err


def test_what_one_team_causes_becomes_its_row_and_the_run_goes_on(project, monkeypatch):
    add_team(project, "alpha")
    add_team(project, "beta")
    real = tracks.PREPARERS["fixed-ipc"]

    def explode(opts, sub, sha, dataset):
        if sub.team == "alpha":  # e.g. a file the team made unreadable
            raise PermissionError(13, "Permission denied", "submissions/alpha/digits.safetensors")
        return real(opts, sub, sha, dataset)

    monkeypatch.setitem(tracks.PREPARERS, "fixed-ipc", explode)
    assert main(["run", "--track", "fixed-ipc", "--root", str(project), *QUICK]) == 1
    rows = {r["team"]: r for r in read_results(project)}
    assert rows["alpha"]["status"] == "failed" and "PermissionError" in rows["alpha"]["error"]
    assert rows["beta"]["status"] == "ok"


# -- cost bounded before work ----------------------------------------------------------------------

def safetensors_claiming(shape, dtype="U8", payload=b""):
    header = json.dumps({"images": {"dtype": dtype, "shape": shape, "data_offsets": [0, 10**12]},
                         "labels": {"dtype": "I64", "shape": [shape[0]], "data_offsets": [0, 8]}}).encode()
    return struct.pack("<Q", len(header)) + header + payload


def compressed_pt(n):
    """A torch.save file whose storages are deflate-compressed: a small file, a large tensor."""
    buf = io.BytesIO()
    torch.save({"images": torch.zeros(n, 3, 8, 8, dtype=torch.uint8), "labels": torch.zeros(n, dtype=torch.int64)}, buf)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item.filename, src.read(item.filename))
    return out.getvalue()


@pytest.mark.parametrize("name,data,fragment", [
    ("digits.safetensors", safetensors_claiming([10**9, 3, 8, 8]), "refused to load"),
    ("digits.pt", compressed_pt(200_000), "compressed"),
    ("digits.pt", b"\x80\x02" + b"x" * 100, "refused to load"),  # a raw (legacy) pickle
])
def test_a_small_file_claiming_much_is_refused_before_its_data_is_read(project, name, data, fragment):
    import resource

    add_team(project, "claim", files={name: data})
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert main(["submit", "claim", "--root", str(project), *QUICK]) == 1
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB: nothing large was read
    [row] = read_results(project)
    assert row["status"] == "invalid" and fragment in row["error"], row["error"]


def test_more_images_than_accepted_are_refused_from_the_header(project):
    from safetensors.torch import save_file

    folder = add_team(project, "many", files={})
    save_file({"images": torch.zeros(5000, 3, 8, 8, dtype=torch.uint8), "labels": torch.arange(5000) % 10},
              str(folder / "digits.safetensors"))
    assert main(["submit", "many", "--root", str(project), *QUICK]) == 1
    assert "holds 5000 images, more than the 100 accepted" in read_results(project)[0]["error"]


# -- results.csv is checked on every read ----------------------------------------------------------

def damaged(project, how):
    add_team(project, "alpha")
    assert main(["submit", "alpha", "--root", str(project), *QUICK]) == 0
    path = project / "leaderboard" / "results.csv"
    text = path.read_text()
    if how == "no final newline":
        path.write_text(text.rstrip("\n"))
    elif how == "foreign header":
        path.write_text("name,score\n" + text.split("\n", 1)[1])
    elif how == "short line":
        path.write_text(text + "alpha,m,fixed-ipc\n")
    elif how == "bad number":
        lines = text.splitlines()
        path.write_text(lines[0] + "\n" + lines[1].replace(",fp32,", ",fp32,").replace(",1,[0],", ",one,[0],") + "\n")
    return path


def test_a_missing_final_newline_does_not_glue_rows(project):
    path = damaged(project, "no final newline")
    add_team(project, "beta")
    assert main(["submit", "beta", "--root", str(project), *QUICK]) == 0
    assert [r["team"] for r in read_results(project)] == ["alpha", "beta"]
    assert main(["results", "check", "--root", str(project)]) == 0 and path.read_text().endswith("\n")


@pytest.mark.parametrize("how,fragment", [("foreign header", "line 1 is not this harness's header"),
                                          ("short line", "line 3: 3 fields, expected"),
                                          ("bad number", "line 2: column 'runs' holds 'one'")])
def test_a_damaged_file_is_refused_with_its_line_and_never_appended_to(project, capsys, how, fragment):
    path = damaged(project, how)
    before = path.read_text()
    capsys.readouterr()
    add_team(project, "beta")
    assert main(["submit", "beta", "--root", str(project), *QUICK]) == 2
    assert main(["leaderboard", "--root", str(project)]) == 2
    assert main(["results", "check", "--root", str(project)]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err and ("move the file aside" in err or "move it aside" in err)
    assert path.read_text() == before


# -- found by a hostile review ---------------------------------------------------------------------

@pytest.mark.parametrize("extra", ["notes: 2024-02-30\n", "notes: !!float abc\n", "contact: 2001-13-45\n",
                                   "notes: " + "[" * 20000 + "\n"])
def test_yaml_values_python_cannot_build_are_a_status_row_and_the_run_goes_on(project, extra):
    add_team(project, "alice")
    add_team(project, "bob", spec=spec("bob", extra=extra))
    assert main(["submit", "bob", "--root", str(project), *QUICK]) == 1
    [row] = read_results(project)
    assert row["status"] == "invalid" and "submission.yaml" in row["error"]
    assert main(["run", "--track", "fixed-ipc", "--root", str(project), *QUICK]) == 0
    assert [r["team"] for r in read_results(project)] == ["bob", "alice"]


def test_a_huge_yaml_integer_argument_is_refused(project):
    add_generator(project, "big", "write_valid_shard(args)\n", args=["--x"])
    spec_path = project / "submissions" / "big" / "submission.yaml"
    spec_path.write_text(spec_path.read_text().replace("- --x", "- " + "9" * 5000))  # int() refuses 4300+ digits
    assert main(["submit", "big", "--root", str(project), *QUICK]) == 1
    assert "a value YAML cannot read" in read_results(project)[0]["error"]


def test_lone_surrogates_and_invisible_characters_never_reach_a_file(project):
    add_team(project, "sur")
    (project / "submissions" / "sur" / "submission.yaml").write_text(
        'team: sur\nmethod: "=x\\ud800y\\u2060z\\U000e0041w"\ntrack: fixed-ipc\ndatasets: [digits]\n')
    add_team(project, "after")
    assert main(["run", "--track", "fixed-ipc", "--root", str(project), *QUICK]) == 0
    rows = {r["team"]: r for r in read_results(project)}
    assert rows["sur"]["status"] == "ok" and rows["sur"]["method"] == "'=x y z w" and rows["after"]["status"] == "ok"


def test_a_file_name_that_is_not_utf8_spoils_only_its_own_team(project):
    add_team(project, "odd")
    with open(os.path.join(bytes(project / "submissions" / "odd"), b"\xff.txt"), "wb") as f:
        f.write(b"x")
    add_team(project, "innocent")
    assert main(["submit", "innocent", "--root", str(project), *QUICK]) == 0
    assert main(["leaderboard", "--root", str(project)]) == 0
    assert main(["submit", "odd", "--root", str(project), *QUICK]) == 1
    rows = read_results(project)
    assert [(r["team"], r["status"]) for r in rows] == [("innocent", "ok"), ("odd", "invalid")]
    assert "not UTF-8" in rows[1]["error"]


def test_a_folder_name_with_a_final_newline_cannot_pass_for_another_team(project, capsys):
    add_team(project, "alice")
    add_team(project, "alice\n", spec=spec("alice\n"))
    assert main(["run", "--track", "fixed-ipc", "--root", str(project), *QUICK]) == 0
    assert [r["team"] for r in read_results(project)] == ["alice"]
    assert "not a team name" in capsys.readouterr().err
