"""A score measures the submission alone: the leakage check, signed rows, re-running a row, and
protocol files of one's own checked like releases."""
import csv
import io
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from benchmark import leaderboard, results, signing
from benchmark.cli import main
from benchmark.errors import UsageError
from benchmark.protocol import load_protocol, load_protocol_file
from benchmark.results import Result, Status
from conftest import ROOT, add_team, read_results
from evaluator.data import load_dataset
from evaluator.leakage import LeakParams, check_leakage
from evaluator.normalize import normalize

QUICK = ["--preset", "quick", "--device", "cpu"]
P = load_protocol().leakage
DIGITS = load_dataset("digits", None)


sys.path.insert(0, str(ROOT / "perf"))
from leakage_hits import nearest_training, pick, shifted, u8  # noqa: E402  (the disguises the perf script measures)


TEST10, TEST_LABELS = pick(DIGITS.test_images, DIGITS.test_labels, 10)
NOISE = torch.randn(TEST10.shape, generator=torch.Generator().manual_seed(1)) * 8
COPIES = {
    "exact": TEST10, "flipped": TEST10.flip(-1), "shifted 2 px": shifted(TEST10, 2, 0),
    "shifted 2 px diagonally": shifted(TEST10, -2, 2), "brightness +20 %": u8(TEST10.float() * 1.2),
    "brightness -20 %": u8(TEST10.float() * 0.8), "noise 8/255": u8(TEST10.float() + NOISE),
    "contrast and colour": u8((TEST10.float() - 128) * torch.tensor([0.8, 0.7, 0.9]).view(1, 3, 1, 1) + 140),
    "re-quantised to 8 levels": u8((TEST10.float() / 32).round() * 32),
    "flipped, shifted, brighter and noisy": u8(shifted(TEST10.flip(-1), 1, 2).float() * 1.1 + NOISE),
}


@pytest.mark.parametrize("case", list(COPIES))
def test_copies_of_test_images_are_matched_and_flagged(case):
    report = check_leakage(COPIES[case], TEST_LABELS, DIGITS.test_images, DIGITS.test_labels, DIGITS.train_images, P)
    assert report.matched >= 95 and report.flagged
    assert all(DIGITS.test_labels[m.test_image] == TEST_LABELS[m.image] for m in report.matches)


@pytest.mark.parametrize("ipc", [10, 50])
def test_random_training_images_are_never_matched(ipc):
    for seed in range(3):
        images, labels = pick(DIGITS.train_images, DIGITS.train_labels, ipc, seed)
        report = check_leakage(images, labels, DIGITS.test_images, DIGITS.test_labels, DIGITS.train_images, P)
        assert report.matched == 0 and not report.flagged


def test_synthetic_images_close_to_the_data_are_not_matched():
    """Class means (blurry, like distribution matching's images), augmented training images,
    blends of two training images and noise: none is a copy of a test image."""
    train, labels = DIGITS.train_images, DIGITS.train_labels
    means = torch.stack([train[labels == c].float().mean(0) for c in range(10)]).repeat_interleave(10, 0)
    some, some_labels = pick(train, labels, 10)
    others, _ = pick(train, labels, 10, seed=5)
    sets = [u8(means), u8(shifted(some.flip(-1), 1, 1).float() * 1.1 + NOISE), u8((some.float() + others.float()) / 2),
            torch.randint(0, 256, some.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(2))]
    for images in sets:
        report = check_leakage(images, some_labels, DIGITS.test_images, DIGITS.test_labels, train, P)
        assert not report.flagged, report.matches


def test_a_training_image_that_duplicates_a_test_image_is_not_a_leak():
    """Several percent of CIFAR's test images have a near duplicate in the training set: the
    ratio test must not count them. Here the training set is made to contain the test copies."""
    train = torch.cat([DIGITS.train_images, TEST10])
    report = check_leakage(TEST10, TEST_LABELS, DIGITS.test_images, DIGITS.test_labels, train, P)
    assert report.matched == 0


def test_a_copy_under_another_label_teaches_nothing_and_is_not_counted():
    wrong = (TEST_LABELS + 1) % 10
    report = check_leakage(TEST10, wrong, DIGITS.test_images, DIGITS.test_labels, DIGITS.train_images, P)
    assert report.matched == 0


def test_the_retrieval_stage_finds_the_same_copies_as_the_exhaustive_one(monkeypatch):
    """Large sets are compared through retrieved candidates: at 32 px (digits upscaled over a
    textured background) both stages agree on copies and on honest images."""
    from evaluator import leakage

    g = torch.Generator().manual_seed(3)
    texture = torch.randint(0, 256, (1, 3, 32, 32), generator=g).float()
    up = lambda x: u8(F.interpolate(x.float(), size=32, mode="bilinear", align_corners=False) * 0.7 + texture * 0.3)  # noqa: E731
    test, train = up(DIGITS.test_images), up(DIGITS.train_images)
    copies = u8(shifted(up(TEST10).flip(-1), 2, -1).float() * 0.85)
    honest, honest_labels = pick(train, DIGITS.train_labels, 10)
    for threshold in (1 << 60, 0):  # exhaustive, then retrieval
        monkeypatch.setattr(leakage, "EXHAUSTIVE_PIXEL_PAIRS", threshold)
        assert check_leakage(copies, TEST_LABELS, test, DIGITS.test_labels, train, P).matched >= 95
        assert check_leakage(honest, honest_labels, test, DIGITS.test_labels, train, P).matched == 0


def test_leak_parameters_are_range_checked():
    with pytest.raises(ValueError, match="ratio"):
        LeakParams(max_shift=2, coarse_size=8, candidates=8, max_distance=0.1, ratio=float("nan"), blend_ratio=0.25, max_fraction=0.01)


# -- end to end: a team submitting test images -----------------------------------------------------

def _files(images, labels, official=False):
    buf = io.BytesIO()
    if official:  # the challenge's own format: normalised floats, labels implied
        torch.save(normalize(images, DIGITS.info.mean, DIGITS.info.std), buf)
        return {"digits.pt": buf.getvalue()}
    return {"digits.safetensors": _safetensors(images, labels)}


def _safetensors(images, labels):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.safetensors"
        save_file({"images": images.contiguous(), "labels": labels.contiguous()}, str(path))
        return path.read_bytes()


@pytest.mark.parametrize("official", [False, True], ids=["uint8 safetensors", "normalised float .pt"])
def test_a_team_submitting_test_images_is_flagged_and_shown_with_its_pairs(project, capsys, official):
    add_team(project, "copier", _files(TEST10, TEST_LABELS, official))
    add_team(project, "honest")
    assert main(["run", "--track", "fixed-ipc", "--root", str(project), *QUICK]) == 0
    rows = {r["team"]: r for r in read_results(project)}
    assert rows["copier"]["leaked"] == "100" and rows["copier"]["flagged"] == "true"
    assert rows["honest"]["leaked"] == "0" and rows["honest"]["flagged"] == "false"
    assert "near copies of test images" in capsys.readouterr().err
    board = (project / "leaderboard" / "LEADERBOARD.md").read_text()
    flagged = board.split("## Flagged")[1].split("\n## ")[0]
    assert "| fixed-ipc | copier | digits | convnet | 100 of 100 |" in flagged and "honest" not in flagged
    assert (project / "leaderboard" / "grids" / "copier-digits-leaks.png").is_file()
    assert "copier" not in board.split("## Non-standard")[1].split("\n## ")[0]


def test_a_flagged_standard_row_is_never_ranked(tmp_path):
    (tmp_path / "leaderboard").mkdir()
    current = str(load_protocol().version)
    base = dict(method="m", track="fixed-ipc", dataset="digits", status=Status.OK, ipc=10, epochs=1000, runs=3,
                seeds=(0, 1, 2), standard=True, arch="convnet", images=100, acc_runs=(90.0, 91.0, 92.0), acc_mean=91.0,
                acc_std=1.0, acc_ci95=2.5, protocol_version=current, device="d", precision="fp32", leaked=0,
                flagged=False)
    with results.locked(tmp_path):
        results.append_result(tmp_path, Result(team="honest", **base))
        results.append_result(tmp_path, Result(team="copier", **{**base, "acc_mean": 99.0, "acc_runs": (98.0, 99.0, 100.0), "leaked": 100,
                                                                 "flagged": True}))
        leaderboard.write(tmp_path, {})
    board = (tmp_path / "leaderboard" / "LEADERBOARD.md").read_text()
    track = board.split("## Track 1: fixed IPC")[1].split("\n## ")[0]
    assert "honest" in track and "copier" not in track
    assert "copier" in board.split("## Flagged")[1]


# -- signed rows -----------------------------------------------------------------------------------

KEY = "k" * 40


def _forge(project, **changes):
    """Append a well-formed row by hand (a copy of the last one, changed), as a forger would."""
    path = project / "leaderboard" / "results.csv"
    rows = list(csv.DictReader(path.open(newline="")))
    forged = {**rows[-1], **changes}
    with path.open("a", newline="") as f:
        csv.DictWriter(f, fieldnames=list(results.COLUMNS), lineterminator="\n").writerow(forged)
    return len(rows) + 2  # its line number


def test_with_a_key_every_row_is_signed_and_a_forged_row_is_named_and_never_trusted(project, capsys, monkeypatch):
    monkeypatch.setenv("BENCH_SIGNING_KEY", KEY)
    add_team(project, "alpha")
    assert main(["submit", "alpha", "--root", str(project), *QUICK]) == 0
    row = read_results(project)[0]
    assert row["signer"] == signing.load_key().fingerprint and len(row["signature"]) == 64
    assert main(["results", "check", "--root", str(project)]) == 0
    # the forger copies alpha's row (its real protocol_key) with a better score, then edits another
    line = _forge(project, acc_mean="99.9", acc_runs="[99.9]")
    capsys.readouterr()
    assert main(["results", "check", "--root", str(project)]) == 1
    err = capsys.readouterr().err
    assert f"results.csv line {line}: alpha/digits (ok) is unverified: signature does not match" in err
    # an honest submit of alpha is not skipped on the strength of the forged row
    assert main(["submit", "alpha", "--root", str(project), *QUICK]) == 0
    assert "protocol already evaluated" in capsys.readouterr().err  # the signed first row is trusted ...
    rows = read_results(project)
    assert len(rows) == 2
    key = signing.load_key()
    assert results.find_ok(project, rows[0]["protocol_key"], key).acc_mean == float(rows[0]["acc_mean"])
    assert main(["leaderboard", "--root", str(project)]) == 0
    board = (project / "leaderboard" / "LEADERBOARD.md").read_text()
    assert "Unverified rows" in board and "99.90" in board.split("## Unverified rows")[1]
    assert f"key `{key.fingerprint}`" in board


def test_a_forged_row_alone_does_not_make_an_honest_submit_skip(project, capsys, monkeypatch):
    add_team(project, "alpha")
    assert main(["submit", "alpha", "--root", str(project), *QUICK]) == 0  # unsigned: no key yet
    _forge(project, acc_mean="99.9", acc_runs="[99.9]")
    monkeypatch.setenv("BENCH_SIGNING_KEY", KEY)
    capsys.readouterr()
    assert main(["results", "check", "--root", str(project)]) == 1
    assert "line 2: alpha/digits (ok) is unverified: no signature" in capsys.readouterr().err
    assert main(["submit", "alpha", "--root", str(project), *QUICK]) == 0
    assert "protocol already evaluated" not in capsys.readouterr().err
    assert len(read_results(project)) == 3 and read_results(project)[-1]["signature"]


def test_without_a_key_rows_are_unsigned_and_the_page_says_so(project):
    add_team(project, "alpha")
    assert main(["submit", "alpha", "--root", str(project), *QUICK]) == 0
    assert read_results(project)[0]["signature"] == ""
    assert "The record is unsigned" in (project / "leaderboard" / "LEADERBOARD.md").read_text()


def test_a_key_file_inside_the_project_is_refused_and_keygen_writes_a_private_one(project, tmp_path, monkeypatch):
    inside = project / "key"
    inside.write_text(KEY)
    monkeypatch.setenv("BENCH_SIGNING_KEY_FILE", str(inside))
    with pytest.raises(UsageError, match="inside the project"):
        signing.load_key(project)
    outside = tmp_path / "secret" / "signing.key"
    assert main(["results", "keygen", "--root", str(project), "--out", str(outside)]) == 0
    assert outside.stat().st_mode & 0o077 == 0
    monkeypatch.setenv("BENCH_SIGNING_KEY_FILE", str(outside))
    assert len(signing.load_key(project).fingerprint) == 16
    assert main(["results", "keygen", "--root", str(project), "--out", str(outside)]) == 2  # never overwritten


# -- re-running a row ------------------------------------------------------------------------------

def test_verify_reproduces_a_row_exactly_and_catches_an_edited_one(project, capsys):
    add_team(project, "alpha")
    assert main(["submit", "alpha", "--root", str(project), "--runs", "2", "--epochs", "3", "--device", "cpu"]) == 0
    assert main(["baseline", "random", "--dataset", "digits", "--root", str(project), *QUICK]) == 0
    capsys.readouterr()
    runs = project / "leaderboard" / ".runs"
    saved = sorted(runs.glob("*/seed-*.json"))
    assert saved
    for path in saved:  # a verification trains afresh: it neither reads nor writes saved runs
        path.write_text(path.read_text().replace('"accuracy": ', '"accuracy": 1'))
    assert main(["results", "verify", "--root", str(project), "--device", "cpu"]) == 0
    assert sorted(runs.glob("*/seed-*.json")) == saved
    err = capsys.readouterr().err
    assert err.count("reproduced: recorded") == 2 and "every run identical" in err and "2 of 2 rows reproduced" in err
    # a hand-edited score is not reproduced
    path = project / "leaderboard" / "results.csv"
    rows = list(csv.DictReader(path.open(newline="")))
    rows[0]["acc_runs"], rows[0]["acc_mean"] = "[99.0, 98.0]", "98.5"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(results.COLUMNS), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    assert main(["results", "verify", "--root", str(project), "--line", "2", "--device", "cpu"]) == 1
    assert "differs" in capsys.readouterr().err
    # changed files cannot be verified
    (project / "submissions" / "alpha" / "notes.txt").write_text("changed")
    assert main(["results", "verify", "--root", str(project), "--team", "alpha", "--device", "cpu"]) == 1
    assert "no longer hash" in capsys.readouterr().err


# -- protocol files of one's own ---------------------------------------------------------------------

RELEASED = (load_protocol_file.__globals__["FOLDER"] / f"v{load_protocol().version}.yaml").read_text()


@pytest.mark.parametrize("change, message", [
    (("lr: 0.01", "lr: .nan"), "training.lr"),
    (("lr: 0.01", "lr: .inf"), "training.lr"),
    (("epochs: 1000", "epochs: 1000000000000"), "fixed_ipc.epochs"),
    (("epochs: 1000", "epochs: 1e12"), "fixed_ipc.epochs"),
    (("digits: 60", "digits: .nan"), "budget_seconds.digits"),
    (("digits: 60", "digits: -5"), "budget_seconds.digits"),
    (("max_memory_mib: 16384", "max_memory_mib: 0"), "sandbox.max_memory_mib"),
    (("max_ipc: 1000", "max_ipc: -1"), "generative.max_ipc"),
    (("ratio: 0.5", "ratio: 0"), "integrity.leakage.ratio"),
    (("momentum: 0.9", "momentum: 0.9\n  momentum: 0.5"), "appears twice"),
])
def test_a_protocol_file_of_ones_own_is_checked_like_a_release(tmp_path, change, message):
    path = tmp_path / "mine.yaml"
    path.write_text(RELEASED.replace(*change, 1))
    with pytest.raises(UsageError, match=message):
        load_protocol_file(path)


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path, capsys):
    import time

    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]'] + \
        [f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]" for i in range(20)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    started = time.perf_counter()
    assert main(["evaluate", "x.pt", "--dataset", "digits", "--protocol", str(path)]) == 2
    assert time.perf_counter() - started < 5
    assert "anchors and aliases" in capsys.readouterr().err


# -- what a hostile review found -------------------------------------------------------------------

@pytest.mark.parametrize("weight", [0.45, 0.6])
def test_test_images_blended_with_their_nearest_training_image_are_flagged(weight):
    """A blend sits between the test image and the training set, so the distance ratio alone
    misses it; the nearest training image and the test image together explain it exactly."""
    blend = u8((1 - weight) * TEST10.float() + weight * nearest_training(TEST10, TEST_LABELS, DIGITS.train_images, DIGITS.train_labels))
    report = check_leakage(blend, TEST_LABELS, DIGITS.test_images, DIGITS.test_labels, DIGITS.train_images, P)
    assert report.flagged and report.matched >= 90


def test_blends_of_two_training_images_are_not_flagged():
    for seed in range(4):
        a, labels = pick(DIGITS.train_images, DIGITS.train_labels, 10, seed)
        b, _ = pick(DIGITS.train_images, DIGITS.train_labels, 10, seed + 10)
        for weight in (0.3, 0.5):
            blend = u8((1 - weight) * a.float() + weight * b.float())
            report = check_leakage(blend, labels, DIGITS.test_images, DIGITS.test_labels, DIGITS.train_images, P)
            assert not report.flagged, (seed, weight, report.matches)


def _float_file(pixels):
    buf = io.BytesIO()
    torch.save(((pixels / 255 - torch.tensor(DIGITS.info.mean).view(1, 3, 1, 1))
                / torch.tensor(DIGITS.info.std).view(1, 3, 1, 1)).float(), buf)
    return {"digits.pt": buf.getvalue()}


def test_float_images_are_checked_as_trained_not_as_their_clipped_preview(project):
    """Test images stored far outside the pixel range would show as flat squares once clipped:
    such files are refused; within the range, what is trained is what is checked."""
    add_team(project, "outside", _float_file(TEST10.float() * 10 + 256))
    add_team(project, "inside", _float_file(TEST10.float() * 1.4 - 50))
    assert main(["run", "--track", "fixed-ipc", "--root", str(project), *QUICK]) == 1
    rows = {r["team"]: r for r in read_results(project)}
    assert rows["outside"]["status"] == "invalid" and "of the pixel range" in rows["outside"]["error"]
    assert rows["inside"]["flagged"] == "true" and rows["inside"]["leaked"] == "100"


def test_a_deeply_nested_cell_is_a_damaged_line_not_a_crash(project, capsys):
    add_team(project, "alpha")
    assert main(["submit", "alpha", "--root", str(project), *QUICK]) == 0
    line = _forge(project, acc_runs="[" * 5000 + "]" * 5000)
    capsys.readouterr()
    assert main(["results", "check", "--root", str(project)]) == 2
    assert f"line {line}: column 'acc_runs'" in capsys.readouterr().err
    assert main(["leaderboard", "--root", str(project)]) == 2


def test_a_numeric_key_in_submission_yaml_is_invalid_and_others_go_on(project):
    add_team(project, "alpha", spec="team: alpha\nmethod: m\ntrack: fixed-ipc\ndatasets: [digits]\n? 0x" + "f" * 5000
             + "\n: 1\n")
    add_team(project, "beta")
    assert main(["run", "--track", "fixed-ipc", "--root", str(project), *QUICK, "--team", "alpha", "--team",
                 "beta"]) == 1
    rows = {r["team"]: r for r in read_results(project)}
    assert rows["alpha"]["status"] == "invalid" and "not text" in rows["alpha"]["error"]
    assert rows["beta"]["status"] == "ok"


def test_a_signed_row_replayed_or_moved_no_longer_verifies(project, capsys, monkeypatch):
    monkeypatch.setenv("BENCH_SIGNING_KEY", KEY)
    add_team(project, "alpha")
    assert main(["submit", "alpha", "--root", str(project), *QUICK]) == 0
    assert main(["submit", "alpha", "--root", str(project), *QUICK, "--force"]) == 0
    path = project / "leaderboard" / "results.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[1]]) + "\n")  # the first signed row, replayed at the end
    capsys.readouterr()
    assert main(["results", "check", "--root", str(project)]) == 1
    err = capsys.readouterr().err
    assert "line 4: alpha/digits (ok) is unverified" in err and "line 2" not in err and "line 3" not in err
    path.write_text("\n".join([lines[0], lines[2]]) + "\n")  # the first signed row removed
    assert main(["results", "check", "--root", str(project)]) == 1


def test_verify_refuses_an_unverified_row_and_recomputes_the_interval(project, capsys, monkeypatch):
    add_team(project, "alpha")
    assert main(["submit", "alpha", "--root", str(project), "--runs", "2", "--epochs", "3", "--device", "cpu"]) == 0
    _forge(project, device="NVIDIA H100", acc_ci95="1000", acc_runs="[99.0, 99.0]", acc_mean="99.0")
    capsys.readouterr()
    assert main(["results", "verify", "--root", str(project), "--line", "3", "--device", "cpu"]) == 1
    assert "differs" in capsys.readouterr().err  # the row's own CI cell is not trusted
    monkeypatch.setenv("BENCH_SIGNING_KEY", KEY)
    assert main(["results", "verify", "--root", str(project), "--line", "3", "--device", "cpu"]) == 1
    assert "cannot verify: its signature does not verify" in capsys.readouterr().err


def test_a_protocol_value_yaml_reads_as_a_date_or_binary_is_refused_in_one_line(tmp_path):
    for extra in ("extra: 2024-01-01", "extra: !!binary aGVsbG8=", "1: a"):
        path = tmp_path / "mine.yaml"
        path.write_text(RELEASED + "\n" + extra + "\n")
        with pytest.raises(UsageError, match="a protocol holds only numbers"):
            load_protocol_file(path)


def test_float_images_in_0_1_are_warned_about():
    from benchmark.validate import normalisation_warning

    images = TEST10.float() / 255
    assert "every value lies in [0, 1]" in normalisation_warning(Path("digits.pt"), images)
    assert normalisation_warning(Path("digits.pt"), normalize(TEST10, DIGITS.info.mean, DIGITS.info.std)) is None
