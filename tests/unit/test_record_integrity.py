"""Integrity without training: flagged rows are never ranked, signing keys, protocol files of
one's own checked like releases."""

import pytest
from conftest import KEY, released_protocol_text

from benchmark import leaderboard, results, signing
from benchmark.cli import main
from benchmark.errors import UsageError
from benchmark.protocol import load_protocol, load_protocol_file
from benchmark.results import Result, Status


# -- a flagged row on the page ---------------------------------------------------------------------

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
    path.write_text(released_protocol_text().replace(*change, 1))
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


def test_a_protocol_value_yaml_reads_as_a_date_or_binary_is_refused_in_one_line(tmp_path):
    for extra in ("extra: 2024-01-01", "extra: !!binary aGVsbG8=", "1: a"):
        path = tmp_path / "mine.yaml"
        path.write_text(released_protocol_text() + "\n" + extra + "\n")
        with pytest.raises(UsageError, match="a protocol holds only numbers"):
            load_protocol_file(path)
