"""The generative track through `bench submit`: the clock, crashes, empty output, IPC and epochs."""
import pytest
from conftest import add_generator, read_results, submit



def test_generator_rows_record_ipc_generation_and_drops(project):
    add_generator(project, "gen", """
import torch
w = ShardWriter(args.out, args.resolution)
labels = torch.cat([torch.arange(10).repeat_interleave(3), torch.tensor([0] * 5)])  # class 0 has 8
w.write(torch.zeros(35, 3, 8, 8, dtype=torch.uint8), labels)
w.write(torch.zeros(10, 3, 8, 8, dtype=torch.uint8), torch.arange(10))
""")
    assert submit(project, "gen") == 0
    row = read_results(project)[0]
    assert (row["status"], row["ipc"], row["images_generated"], row["images_dropped"]) == ("ok", "4", "45", "5")
    assert row["sandbox"] == "bwrap" and row["budget_seconds"] == "60"
    assert 0 < float(row["gen_seconds"]) < float(row["budget_effective"])
    page = (project / "leaderboard" / "LEADERBOARD.md").read_text()
    assert "| generative | gen | digits |" in page
    # digits makes the anytime curve: all shards were done at once, so the main row is its only point
    assert row["anytime"] == "1" and len(read_results(project)) == 1 and "| gen | digits | " in page


def test_sleeper_is_killed_at_the_deadline_and_scored_on_finished_shards(project, capsys):
    add_generator(project, "sleepy", """
write_valid_shard(args, per_class=3)
sys.stdout.flush()
time.sleep(1000)
write_valid_shard(args, per_class=3)
""")
    assert submit(project, "sleepy", "--budget", "6") == 0
    row = read_results(project)[0]
    assert row["status"] == "ok" and row["ipc"] == "3" and row["images_generated"] == "30"
    assert 5.9 <= float(row["gen_seconds"]) <= 6.01
    assert "stopped at the deadline" in capsys.readouterr().err


def test_crash_gets_a_failed_row_with_the_stderr_tail(project, capsys):
    add_generator(project, "crashy", 'print("loading weights"); raise RuntimeError("model exploded")\n')
    assert submit(project, "crashy") == 1
    row = read_results(project)[0]
    assert row["status"] == "failed" and "exited with status 1" in row["error"]
    assert "RuntimeError: model exploded" in row["error"] and row["acc_mean"] == ""


def test_generator_that_writes_nothing(project):
    add_generator(project, "lazy", 'print("nothing to see")\n')
    assert submit(project, "lazy") == 1
    row = read_results(project)[0]
    assert row["status"] == "failed" and "without completing a shard" in row["error"]


def test_generator_that_never_finishes_a_shard_times_out(project):
    add_generator(project, "slow", "time.sleep(1000)\n")
    assert submit(project, "slow", "--budget", "4") == 1
    row = read_results(project)[0]
    assert row["status"] == "timeout" and "within the 4 s budget" in row["error"]


@pytest.mark.parametrize("body,fragment", [
    ("import torch\nShardWriter(args.out).write(torch.zeros(10, 3, 16, 16, dtype=torch.uint8), torch.arange(10))\n",
     "expected N x 3 x 8 x 8"),
    ("import torch\nShardWriter(args.out).write(torch.zeros(10, 3, 8, 8, dtype=torch.uint8), torch.arange(10) + 5)\n",
     "labels out of range"),
    ("import torch\nShardWriter(args.out).write(torch.zeros(10, 3, 8, 8, dtype=torch.uint8), torch.arange(10) % 9)\n",
     "no image of class 9 ('nine')"),
])
def test_bad_shards_are_rejected(project, body, fragment):
    add_generator(project, "bad", body)
    assert submit(project, "bad") == 1
    row = read_results(project)[0]
    assert row["status"] == "invalid" and fragment in row["error"]


def test_identical_generative_submission_is_not_regenerated(project, capsys):
    add_generator(project, "gen", "write_valid_shard(args)\n")
    assert submit(project, "gen") == 0
    capsys.readouterr()
    assert submit(project, "gen") == 0
    err = capsys.readouterr().err
    assert "already evaluated" in err and "generating" not in err


def test_no_sandbox_is_an_explicit_recorded_opt_in(project):
    add_generator(project, "gen", "write_valid_shard(args)\n")
    assert submit(project, "gen", "--no-sandbox") == 0
    row = read_results(project)[0]
    assert (row["sandbox"], row["standard"], row["nonstandard"]) == ("none", "false", "preset=quick runs=1 epochs=2 no-sandbox")
