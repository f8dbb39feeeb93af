"""The soft-label division on the page, scores read against the reference rows, and results.csv
files written before the division's columns existed."""
import csv
import io
import math

import pytest
from conftest import KEY

from benchmark import leaderboard, results, signing
from benchmark.protocol import load_protocol
from benchmark.results import Result, Status
from evaluator.stats import Estimate

CURRENT = str(load_protocol().version)


def row(team, runs, track="fixed-ipc", ipc=10, **kw):
    mean = sum(runs) / len(runs)
    std = math.sqrt(sum((r - mean) ** 2 for r in runs) / (len(runs) - 1))
    base = dict(team=team, method="m", track=track, dataset="photodigits", status=Status.OK, ipc=ipc, epochs=1000,
                runs=len(runs), seeds=tuple(range(len(runs))), standard=True, arch="convnet", images=ipc * 10,
                acc_runs=tuple(runs), acc_mean=mean, acc_std=std, acc_ci95=Estimate.of(runs).ci95,
                protocol_version=CURRENT, device="d", precision="fp32", leaked=0, flagged=False,
                submission_sha256=team)
    return Result(**{**base, **kw})


def page(root, *rows):
    (root / "leaderboard").mkdir(exist_ok=True)
    with results.locked(root):
        for r in rows:
            results.append_result(root, r, signing.load_key(root))
        leaderboard.write(root, {})
    return (root / "leaderboard" / "LEADERBOARD.md").read_text()


def section(board, title):
    return board.split(f"## {title}")[1].split("\n## ")[0]


def cells(table_text, first):
    line = next(l for l in table_text.splitlines() if l.startswith("| ") and f"| {first} |" in l)
    header = next(l for l in table_text.splitlines() if l.startswith("| #") or l.startswith("| reference"))
    return dict(zip([c.strip() for c in header.strip("|").split("|")], [c.strip() for c in line.strip("|").split("|")]))


def test_estimates_of_a_difference_and_a_ratio():
    a, b = Estimate.of([60.0, 61.0, 62.0]), Estimate.of([48.0, 50.0, 52.0])
    d = a.minus(b)
    assert d.mean == pytest.approx(11.0) and d.var_mean == pytest.approx(1 / 3 + 4 / 3)
    assert 2 <= d.df <= 4  # Welch-Satterthwaite between the two samples' 2 degrees of freedom each
    r = a.over(Estimate.of([74.0, 75.0, 76.0]))
    assert r.mean == pytest.approx(61 / 75)
    assert r.var_mean == pytest.approx((61 / 75) ** 2 * ((1 / 3) / 61**2 + (1 / 3) / 75**2))


def test_every_ranked_row_shows_improvement_over_random_at_its_ipc_and_recovery(tmp_path):
    board = page(tmp_path,
                 row("dm", [60.0, 61.0, 62.0]), row("gen", [40.0, 41.0, 42.0], track="generative", ipc=50, epochs=200),
                 row("Random 10 IPC", [48.0, 50.0, 52.0], track="reference"),
                 row("Full dataset", [74.0, 75.0, 76.0], track="reference", ipc=1488, epochs=7))
    dm = cells(section(board, "Track 1: fixed IPC"), "dm")
    assert dm["over random"].startswith("+11.00 (") and dm["recovery"].startswith("81.33 % (")
    gen = cells(section(board, "Track 2: generative"), "gen")
    assert gen["over random"] == "—"  # no random reference at IPC 50: never compared with IPC 10's
    assert gen["recovery"].startswith("54.67 % (")
    board = page(tmp_path, row("Random 50 IPC", [50.0, 51.0, 52.0], track="reference", ipc=50, epochs=200))
    assert cells(section(board, "Track 2: generative"), "gen")["over random"].startswith("-10.00 (")


def test_the_division_ranks_soft_rows_apart_with_their_hard_score_and_costs(tmp_path):
    board = page(tmp_path,
                 row("plain", [60.0, 61.0, 62.0]),
                 row("stored", [70.0, 71.0, 72.0], track="soft-label", labels="stored", label_bytes=4000,
                     image_bytes=19200),
                 row("stored", [50.0, 51.0, 52.0], track="soft-label", labels="hard", label_bytes=800, image_bytes=19200),
                 row("online", [80.0, 81.0, 82.0], track="soft-label", labels="online", label_bytes=0,
                     image_bytes=19200, teacher="6a865733c86241ca", teacher_parameters=300810,
                     teacher_flops=1.9e12, teacher_acc=92.2),
                 row("online", [50.0, 51.0, 52.0], track="soft-label", labels="hard", label_bytes=800,
                     image_bytes=19200))
    track1 = section(board, "Track 1: fixed IPC")
    assert "plain" in track1 and "stored" not in track1 and "online" not in track1
    division = section(board, "Soft-label division")
    online, stored = cells(division, "online"), cells(division, "stored")
    assert online["#"] == "1" and stored["#"] == "2"
    assert online["photodigits"].startswith("81.00") and online["hard labels"].startswith("51.00")
    assert stored["label bytes"] == "4,000" and online["label bytes"] == "0" and stored["image bytes"] == "19,200"
    assert online["teacher"] == "6a865733c86241ca (300,810 parameters, 92.20 %)" and online["teacher FLOPs"] == "1.9e+12"
    assert stored["teacher"] == "—" and online["over random"] == "—"  # no random reference recorded


def test_a_results_file_of_the_previous_version_is_read_and_its_signed_rows_still_verify(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_SIGNING_KEY", KEY)
    key = signing.load_key(tmp_path)
    (tmp_path / "leaderboard").mkdir()
    with results.locked(tmp_path):
        results.append_result(tmp_path, row("before", [60.0, 61.0, 62.0]), key)
    path = results.results_path(tmp_path)
    old_columns = [c for c in results.COLUMNS if c not in results.ADDED]
    lines = list(csv.reader(io.StringIO(path.read_text())))
    keep = [results.COLUMNS.index(c) for c in old_columns]
    header, data = [lines[0][i] for i in keep], [lines[1][i] for i in keep]
    data[-1] = key.sign(data[:-1], "")  # signed as the previous version signed it: its own cells, all of them
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header, data])
    path.write_text(buf.getvalue())  # the file as the harness wrote it before the division's columns
    assert path.read_text().startswith("team,") and "label_bytes" not in path.read_text()
    (old,) = results.read_rows(tmp_path, key)
    assert old.verified and old.result.labels == "" and old.result.label_bytes is None
    with results.locked(tmp_path):
        results.append_result(tmp_path, row("after", [50.0, 51.0, 52.0], track="soft-label", labels="stored",
                                            label_bytes=4000), key)
    assert path.read_text().splitlines()[0] == ",".join(results.COLUMNS)  # rewritten with today's header
    rows = results.read_rows(tmp_path, key)
    assert [r.verified for r in rows] == [True, True] and rows[1].result.label_bytes == 4000
    assert results.check_results(tmp_path) == [] and results.unverified(tmp_path, key) == []


def test_standard_results_ask_for_the_references_at_their_ipc_and_the_full_set(tmp_path):
    from benchmark.baseline import reference_tasks
    from benchmark.options import Options

    opts = Options(load_protocol(), root=tmp_path)
    asked = [row("t1", [60.0, 61.0]), row("gen", [40.0, 41.0], track="generative", ipc=50),
             row("point", [30.0, 31.0], track="generative", ipc=4, anytime=0.25),  # a curve point: no
             row("quick", [50.0, 51.0], standard=False), row("ref", [48.0, 49.0], track="reference"),  # no, no
             row("soft", [70.0, 71.0], track="soft-label", labels="online", dataset="digits"),
             row("bad", [1.0, 2.0], status=Status.INVALID), None]
    names = [t.name for t in reference_tasks(opts, asked)]
    assert names == ["Random 10 IPC/digits", "Random 10 IPC/photodigits", "Random 50 IPC/photodigits",
                     "Full dataset/digits", "Full dataset/photodigits"]
    assert reference_tasks(opts, []) == []


def test_a_zero_full_data_score_or_two_label_modes_of_one_team_do_not_break_the_page(tmp_path):
    board = page(tmp_path,
                 row("t", [0.0, 0.0, 0.0]), row("Full dataset", [0.0, 0.0, 0.0], track="reference", ipc=1488),
                 row("both", [70.0, 71.0, 72.0], track="soft-label", labels="stored", submission_sha256="old"),
                 row("both", [80.0, 81.0, 82.0], track="soft-label", labels="online", submission_sha256="new"))
    assert cells(section(board, "Track 1: fixed IPC"), "t")["recovery"] == "—"
    division = section(board, "Soft-label division")
    assert division.count("| both |") == 1 and cells(division, "both")["labels"] == "online"  # its latest


def test_a_signed_row_whose_division_cells_are_moved_no_longer_verifies(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_SIGNING_KEY", KEY)
    key = signing.load_key(tmp_path)
    (tmp_path / "leaderboard").mkdir()
    with results.locked(tmp_path):
        results.append_result(tmp_path, row("s", [70.0, 71.0, 72.0], track="soft-label", labels="stored",
                                            label_bytes=4000, image_bytes=19200), key)
    path = results.results_path(tmp_path)
    header, line = list(csv.reader(io.StringIO(path.read_text())))
    at = {c: header.index(c) for c in results.ADDED}
    moved = list(line)
    moved[at["labels"]], moved[at["label_bytes"]], moved[at["image_bytes"]] = "", "", ""
    moved[at["teacher"]], moved[at["teacher_parameters"]], moved[at["teacher_flops"]] = "stored", "4000", "19200"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header, moved])
    path.write_text(buf.getvalue())  # the same non-empty cells in the same order, in other columns
    assert [r.verified for r in results.read_rows(tmp_path, key)] == [False]
