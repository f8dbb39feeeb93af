"""The git commit a row records is "dirty" only when the harness itself differs from it."""
import shutil
import subprocess

import pytest

from benchmark.provenance import git_commit

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(root, *args):
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"})


@pytest.fixture
def repo(tmp_path):
    for name in ("benchmark/core.py", "leaderboard/LEADERBOARD.md", "leaderboard/results.csv",
                 "submissions/a/submission.yaml", "README.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("v1\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "x")
    return tmp_path


def test_outputs_and_submissions_do_not_make_the_harness_dirty(repo):
    assert not git_commit(repo).endswith("-dirty") and len(git_commit(repo)) == 12
    (repo / "leaderboard" / "LEADERBOARD.md").write_text("regenerated\n")
    (repo / "leaderboard" / "results.csv").write_text("v1\nrow\n")
    (repo / "leaderboard" / "grids").mkdir()
    (repo / "leaderboard" / "grids" / "a-digits.png").write_bytes(b"png")
    (repo / "submissions" / "a" / "submission.yaml").write_text("changed\n")
    (repo / "notes.txt").write_text("a user's own notes\n")
    assert not git_commit(repo).endswith("-dirty")


@pytest.mark.parametrize("change", ["edit", "untracked"])
def test_a_changed_harness_is_dirty(repo, change):
    if change == "edit":
        (repo / "README.md").write_text("v2\n")
    else:
        (repo / "benchmark" / "new.py").write_text("print()\n")
    assert git_commit(repo).endswith("-dirty")


def test_outside_a_repository_there_is_no_commit(tmp_path):
    assert git_commit(tmp_path) == "" and git_commit(None) == ""
