"""LEADERBOARD.md from results.csv: what is ranked, how honestly, and the CSV's guarantees."""
import pytest

from benchmark import leaderboard, results
from benchmark.protocol import current_version
from benchmark.results import Result, Status

CURRENT = str(current_version())


def row(team, dataset, acc, track="fixed-ipc", status=Status.OK, standard=True, runs=(0.5, 0.0, -0.5), **extra):
    """A result whose runs are acc + the offsets (sample std 0.5 by default)."""
    base = dict(team=team, method=f"{team} method", track=track, dataset=dataset, status=status, ipc=10, epochs=1000,
                runs=len(runs), seeds=tuple(range(len(runs))), standard=standard, device="GPU X", precision="fp32",
                arch="convnet",
                submission_sha256=f"sha-{team}", protocol_version=CURRENT, protocol_key=f"{team}{dataset}{acc}")
    if status is Status.OK:
        accs = tuple(acc + d for d in runs)
        from evaluator.stats import Estimate, sample_std

        base.update(acc_mean=acc, acc_std=sample_std(accs), acc_ci95=Estimate.of(accs).ci95, acc_runs=accs,
                    class_spread=4.0)
    else:
        base.update(error="bad thing | here")
    return Result(**{**base, **extra})


@pytest.fixture
def root(tmp_path):
    (tmp_path / "leaderboard").mkdir()
    return tmp_path


def write(root, *rows, key=None):
    with results.locked(root):
        for r in rows:
            results.append_result(root, r, key)
        leaderboard.write(root, {})
    return (root / "leaderboard" / "LEADERBOARD.md").read_text()


def as_rows(rows):
    return [results.Row(f"results.csv line {i + 2}", r, None) for i, r in enumerate(rows)]


def section(board, title):
    return board.split(f"## {title}")[1].split("\n## ")[0]


def ranked_teams(text):
    return [line.split(" | ")[1] for line in text.splitlines() if line.startswith("| ") and not line.startswith("| #")]


def test_ranked_by_overall_with_run_count_precision_std_and_ci(root):
    board = write(root,
                  row("a", "cifar100", 40.0), row("a", "tinyimagenet", 10.0),  # overall 25
                  row("b", "cifar100", 30.0), row("b", "tinyimagenet", 30.0),  # overall 30
                  row("c", "cifar100", 90.0))  # no overall: ranked after those with one
    t1 = section(board, "Track 1: fixed IPC")
    assert ranked_teams(t1) == ["b", "a", "c"]
    # sample std 0.5 over 3 runs: 95 % CI half-width t(0.975, 2) * 0.5 / sqrt(3) = 1.24
    assert "| 1 | b | b method | 30.00 ± 0.50 (28.76–31.24) | 30.00 ± 0.50 (28.76–31.24) | 30.00 (29." in t1
    assert "| 3 | 1000 | " not in t1 and "| 3 | fp32 | 10 | 1000 |" in t1
    assert "[cifar100](grids/a-cifar100.png) [tinyimagenet](grids/a-tinyimagenet.png)" in t1
    assert "| 3 | c | c method | 90.00 ± 0.50 (88.76–91.24) | — | — |" in t1
    assert "sample std" in t1 and "95 % confidence" in t1


def test_neighbours_within_noise_are_marked_tied(root):
    wide = (3.0, 0.0, -3.0)
    board = write(root, row("a", "digits", 80.0), row("b", "digits", 79.5, runs=wide), row("c", "digits", 60.0),
                  row("d", "digits", 59.9))
    t1 = section(board, "Track 1: fixed IPC")
    ranks = [line.split(" | ")[0][2:] for line in t1.splitlines() if line.startswith("| ") and not line.startswith("| #")]
    assert ranks == ["1", "1=", "3", "3="]
    assert "Welch" in t1


def test_only_standard_rows_of_the_current_protocol_rank_and_never_displace(root):
    board = write(root,
                  row("a", "digits", 60.0),
                  row("a", "digits", 99.0, standard=False, nonstandard="runs=1", runs=(0.0,)),
                  row("a", "digits", 98.0, standard=False, nonstandard="precision=bf16"),
                  row("o", "digits", 97.0, protocol_version="1"),
                  row("x", "digits", None, status=Status.INVALID),
                  row("r", "digits", 80.0, track="reference", ipc=124, epochs=81),
                  row("g", "digits", 70.0, track="generative", ipc=37, epochs=270, gen_seconds=55.2))
    t1 = section(board, "Track 1: fixed IPC")
    assert ranked_teams(t1) == ["a"] and "60.00 ± 0.50" in t1 and "99.00" not in t1 and "97.00" not in t1
    apart = section(board, "Non-standard runs")
    assert "| fixed-ipc | a | digits | convnet | 99.00 | 1 | 10 | 1000 | — | runs=1 |" in apart  # one run: no spread
    assert "precision=bf16" in apart and "| o | digits | convnet | 97.00" in apart and "protocol=1" in apart
    assert "| x | digits | invalid | bad thing \\| here |" in section(board, "Rejected or failed")
    assert "| r | 80.00 ± 0.50 (78.76–81.24) | 3 | 124 | 81 |" in section(board, "Reference rows")
    t2 = section(board, "Track 2: generative")
    assert "| 1 | g | g method | 70.00 ± 0.50 (68.76–71.24) | — | — | 3 | fp32 | 37 | 270 | 55 s |" in t2  # no reference rows: —
    assert "Zhou\\_chuhao | 40.61 | 18.31 | 29.45" in section(board, "Published ECCV 2024")


def test_a_team_is_ranked_by_its_current_files_not_its_latest_row(root):
    rows = [row("a", "digits", 60.0, submission_sha256="old"), row("a", "digits", 70.0, submission_sha256="new"),
            row("a", "digits", 50.0, submission_sha256="old"), row("b", "digits", 40.0, submission_sha256="b1")]
    t1 = section(leaderboard.to_markdown(leaderboard.build_tables(as_rows(rows), {"a": "new", "b": "b2"})), "Track 1: fixed IPC")
    assert ranked_teams(t1) == ["a"] and "70.00" in t1
    assert "Not ranked until evaluated again" in t1 and "b" in t1.split("evaluated again")[1]
    # without the submission folders (e.g. a copied results.csv), the latest standard row counts
    t1 = section(leaderboard.to_markdown(leaderboard.build_tables(as_rows(rows), {})), "Track 1: fixed IPC")
    assert "50.00" in t1


def test_a_later_success_clears_the_rejection(root):
    board = write(root, row("x", "digits", None, status=Status.FAILED), row("x", "digits", 55.0))
    assert "Rejected or failed" not in board


def test_rows_round_trip_typed_and_single_line(root):
    with results.locked(root):
        results.append_result(root, row("a", "digits", 1.0, method="two\nlines\x1b[31m"))
    [back] = results.read_results(root)
    assert back.method == "two lines" and back.acc_runs == (1.5, 1.0, 0.5) and back.seeds == (0, 1, 2)
    assert back.status is Status.OK and back.standard is True and back.acc_mean == 1.0 and back.runs == 3
    assert back.acc_ci95 == pytest.approx(1.242, abs=1e-3) and back.gen_seconds is None
    assert (root / "leaderboard" / "results.csv").read_text().count("\n") == 2


def test_empty_leaderboard_still_lists_the_published_results(root):
    board = write(root)
    assert "No results yet." in section(board, "Track 1: fixed IPC")
    assert "| generative | 1 | zheli | 37.56 | 23.53 | 30.54 |" in board


def test_generated_files_get_the_usual_permissions(root):
    import os
    import stat

    write(root, row("a", "digits", 1.0))
    for name in ("results.csv", "LEADERBOARD.md"):
        mode = stat.S_IMODE(os.stat(root / "leaderboard" / name).st_mode)
        assert mode & 0o044 == 0o044, oct(mode)  # readable by group and others (umask 022)


def test_cross_architecture_tables_sit_beside_the_ranking_with_the_mean_over_unseen_networks(root):
    cross = ("resnet18", "vgg11", "alexnet", "vit")
    rows = [row("a", "digits", 90.0), row("b", "digits", 80.0)]
    rows += [row("a", "digits", 60.0 + i, arch=arch) for i, arch in enumerate(cross)]  # mean unseen 61.5
    rows += [row("b", "digits", 70.0, arch="vgg11"), row("r", "digits", 50.0, track="reference", arch="vit")]
    board = write(root, *rows)
    t1 = section(board, "Track 1: fixed IPC")
    assert ranked_teams(t1) == ["a", "b"] and "60.00" not in t1 and "70.00" not in t1  # the ConvNet's score only
    table = section(board, "Cross-architecture: digits")
    assert "| track | team | convnet | resnet18 | vgg11 | alexnet | vit | mean unseen |" in table
    assert "| fixed-ipc | a | 90.00 ± 0.50 (88.76–91.24) | 60.00 ± 0.50" in table and table.count("61.50") == 1
    assert "| fixed-ipc | b | 80.00 ± 0.50 (78.76–81.24) | — | 70.00 ± 0.50 (68.76–71.24) | — | — | — |" in table
    assert "| reference | r | — | — | — | — | 50.00" in table


def test_no_cross_architecture_table_without_other_networks(root):
    assert "Cross-architecture" not in write(root, row("a", "digits", 90.0))


def test_the_committed_leaderboard_is_what_the_harness_writes_from_the_committed_results():
    """A fresh clone appends to leaderboard/results.csv: its header must be this version's."""
    from conftest import ROOT

    assert (ROOT / "leaderboard" / "results.csv").read_text().splitlines()[0].split(",") == list(results.COLUMNS)
    rows = results.read_results(ROOT)
    assert not rows or all(r.protocol_version for r in rows)


def test_curve_points_are_charted_never_ranked_and_the_clock_is_shown(root):
    gen = dict(track="generative", budget_seconds=60.0, budget_effective=75.0, clock="scaled", device_score=96.0,
               device_score_after=94.5, gen_seconds=75.0, generation_id="g1")
    page = write(root, row("gen", "digits", 80.0, **gen, anytime=1.0, protocol_key="main"),
                 row("gen", "digits", 99.0, **{**gen, "anytime": 0.25, "ipc": 2, "protocol_key": "p1"}),
                 row("gen", "digits", 70.0, **{**gen, "anytime": 0.5, "ipc": 5, "protocol_key": "p2"}))
    track2 = page.split("## Track 2")[1].split("##")[0]
    assert track2.count("| gen |") == 1 and "80.00" in track2 and "99.00" not in track2  # the point is not a row
    assert "scaled: 75 s for 60 s; device 96 → 94.5" in track2
    curves = page.split("## Anytime curves")[1].split("##")[0]
    assert "25%: 99.00, IPC 2; 50%: 70.00, IPC 5; 100%: 80.00, IPC 10" in curves
    assert "![anytime curve](grids/gen-digits-anytime.svg)" in curves
    assert (root / "leaderboard" / "grids" / "gen-digits-anytime.svg").read_text().count("<circle") == 3
    alone = write(root, row("fast", "digits", 75.0, **{**gen, "generation_id": "g2", "gen_seconds": 3.0}, anytime=1.0))
    assert "| fast | digits | 4%: 75.00, IPC 10 |" in alone  # done at 3 s of the 75 it got: the main row alone
    forged = write(root, row("evil", "x) <img src=x>", 75.0, **gen, anytime=1.0),
                   row("gen", "digits", 0.0, status=Status.FAILED, **{**gen, "anytime": 0.75}))
    assert "<img" not in forged.split("## Anytime curves")[1].split("##")[0]  # an unknown dataset: no chart
    assert "| gen | digits | failed" not in forged  # a curve point is not the team's latest attempt
