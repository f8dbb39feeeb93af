"""LEADERBOARD.md from results.csv: ranking, overall, sections; the CSV writer's guarantees."""
import pytest

from benchmark import leaderboard, results


def row(team, dataset, acc, track="fixed-ipc", status="ok", standard=True, **extra):
    base = dict(team=team, method=f"{team} method", track=track, dataset=dataset, status=status, ipc=10, epochs=1000,
                runs=3, acc_mean=acc, acc_std=0.5, acc_runs=[acc] * 3, seeds=[0, 1, 2], class_spread=4.0,
                standard=standard, device="GPU X", submission_sha256="s", protocol_key=f"{team}{dataset}{acc}")
    if status != "ok":
        base.update(acc_mean=None, acc_std=None, acc_runs=None, seeds=None, class_spread=None, error="bad thing | here")
    return {**base, **extra}


@pytest.fixture
def root(tmp_path):
    (tmp_path / "leaderboard").mkdir()
    return tmp_path


def write(root, *rows):
    with results.locked(root):
        for r in rows:
            results.append_row(root, r)
        leaderboard.write(root)
    return (root / "leaderboard" / "LEADERBOARD.md").read_text()


def section(board, title):
    return board.split(f"## {title}")[1].split("\n## ")[0]


def test_ranked_by_overall_over_the_challenge_datasets(root):
    board = write(root,
                  row("a", "cifar100", 40.0), row("a", "tinyimagenet", 10.0),  # overall 25
                  row("b", "cifar100", 30.0), row("b", "tinyimagenet", 30.0),  # overall 30
                  row("c", "cifar100", 90.0))  # no overall: ranked after those with one
    t1 = section(board, "Track 1: fixed IPC")
    lines = [line for line in t1.splitlines() if line.startswith("| ") and not line.startswith("| #")]
    assert [line.split(" | ")[1] for line in lines] == ["b", "a", "c"]
    assert "| 1 | b | b method | 30.00 ± 0.50 | 30.00 ± 0.50 | 30.00 |" in t1
    assert "[cifar100](grids/a-cifar100.png) [tinyimagenet](grids/a-tinyimagenet.png)" in t1
    assert "| 3 | c | c method | 90.00 ± 0.50 | — | — |" in t1


def test_latest_standard_row_counts_and_others_go_to_their_sections(root):
    board = write(root,
                  row("a", "digits", 50.0), row("a", "digits", 60.0),
                  row("a", "digits", 99.0, standard=False, nonstandard="epochs=5", epochs=5),
                  row("x", "digits", None, status="invalid"),
                  row("r", "digits", 80.0, track="reference", ipc=124, epochs=81),
                  row("g", "digits", 70.0, track="generative", ipc=37, epochs=270, gen_seconds=55.2))
    t1 = section(board, "Track 1: fixed IPC")
    assert "60.00 ± 0.50" in t1 and "50.00" not in t1 and "99.00" not in t1
    assert "| fixed-ipc | a | digits | 99.00 ± 0.50 | 10 | 5 | — | epochs=5 |" in section(board, "Non-standard runs")
    assert "| x | digits | invalid | bad thing \\| here |" in section(board, "Rejected or failed")
    assert "| r | 80.00 ± 0.50 | 124 | 81 |" in section(board, "Reference rows")
    t2 = section(board, "Track 2: generative")
    assert "| 1 | g | g method | 70.00 ± 0.50 | 37 | 270 | 55 s |" in t2
    assert "Zhou_chuhao | 40.61 | 18.31 | 29.45" in section(board, "Published ECCV 2024")


def test_a_later_success_clears_the_rejection(root):
    board = write(root, row("x", "digits", None, status="failed"), row("x", "digits", 55.0))
    assert "Rejected or failed" not in board


def test_rows_are_single_line_and_status_checked(root):
    with results.locked(root):
        results.append_row(root, row("a", "digits", 1.0, method="two\nlines"))
        with pytest.raises(ValueError, match="status"):
            results.append_row(root, row("a", "digits", 1.0, status="great"))
        with pytest.raises(ValueError, match="unknown result columns"):
            results.append_row(root, {**row("a", "digits", 1.0), "bogus": 1})
    rows = results.read_rows(root)
    assert len(rows) == 1 and rows[0]["method"] == "two lines" and rows[0]["acc_runs"] == "[1.0, 1.0, 1.0]"
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
