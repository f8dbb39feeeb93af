"""bench submit / run / baseline end to end on digits: rows, skipping, --force, broken submissions."""
import json
import os
import pickle

import pytest
import torch
from conftest import EXAMPLE, QUICK, add_team, read_results, submit
from safetensors.torch import save_file

from benchmark.cli import main


def test_submit_records_a_row_skips_identical_and_force_reevaluates(project, capsys):
    add_team(project, "alpha")
    assert submit(project, "alpha") == 0
    rows = read_results(project)
    assert len(rows) == 1 and rows[0]["status"] == "ok" and rows[0]["team"] == "alpha"
    assert rows[0]["standard"] == "false" and rows[0]["nonstandard"] == "preset=quick runs=1 epochs=2"
    assert float(rows[0]["acc_mean"]) == pytest.approx(sum(json.loads(rows[0]["acc_runs"])), abs=1e-3)  # one run
    assert len(rows[0]["submission_sha256"]) == 64 and rows[0]["ipc"] == "10"
    capsys.readouterr()
    assert submit(project, "alpha") == 0
    assert "already evaluated" in capsys.readouterr().err and len(read_results(project)) == 1
    assert submit(project, "alpha", "--force") == 0
    assert len(read_results(project)) == 2
    assert (project / "leaderboard" / "grids" / "alpha-digits.png").is_file()
    board = (project / "leaderboard" / "LEADERBOARD.md").read_text()
    assert "| fixed-ipc | alpha | digits |" in board  # non-standard section


def test_changed_protocol_or_content_is_not_skipped(project):
    folder = add_team(project, "alpha")
    assert submit(project, "alpha") == 0
    assert main(["submit", "alpha", "--root", str(project), "--epochs", "3", "--runs", "1"]) == 0
    images = torch.zeros(100, 3, 8, 8, dtype=torch.uint8)
    save_file({"images": images, "labels": torch.arange(10).repeat_interleave(10)}, str(folder / "digits.safetensors"))
    assert submit(project, "alpha") == 0
    assert [r["status"] for r in read_results(project)] == ["ok", "ok", "ok"]


class Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


MARKER = f"/tmp/ddbench-submit-pwned-{os.getpid()}"


def _evil_pickle():
    return pickle.dumps({"images": torch.zeros(100, 3, 8, 8), "labels": torch.arange(100) % 10, "x": Exploit()})


def _tensor_file(images, labels):
    import io

    buf = io.BytesIO()
    torch.save({"images": images, "labels": labels}, buf)
    return buf.getvalue()


BROKEN = {
    "bad_yaml": ("team: [unclosed\n", {}, "invalid YAML"),
    "wrong_shape": (None, {"digits.pt": _tensor_file(torch.zeros(100, 3, 16, 16), torch.arange(100) % 10)},
                    "expected N x 3 x 8 x 8"),
    "nan_images": (None, {"digits.pt": _tensor_file(torch.full((100, 3, 8, 8), float("nan")), torch.arange(100) % 10)},
                   "NaN"),
    "missing_file": (None, {}, "digits.pt: missing"),
    "evil_pickle": (None, {"digits.pt": _evil_pickle()}, "refused to load"),
    "labels_range": (None, {"digits.pt": _tensor_file(torch.zeros(100, 3, 8, 8), torch.arange(100) % 10 + 3)},
                     "labels out of range"),
    "unbalanced": (None, {"digits.pt": _tensor_file(torch.zeros(100, 3, 8, 8), torch.tensor([0] * 11 + [1] * 9 + [
        c for c in range(2, 10) for _ in range(10)]))}, "class 0 has 11 images"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_submission_exits_1_with_a_status_row_and_never_a_score(project, capsys, case):
    spec, files, fragment = BROKEN[case]
    team = case.replace("_", "-")
    add_team(project, team, files=files, spec=spec)
    if os.path.exists(MARKER):
        os.unlink(MARKER)
    assert submit(project, team) == 1
    err = capsys.readouterr().err
    reasons = [line for line in err.splitlines() if "error:" in line]
    assert len(reasons) == 1 and fragment in reasons[0], err
    rows = read_results(project)
    assert len(rows) == 1
    assert rows[0]["status"] == "invalid" and fragment in rows[0]["error"]
    assert rows[0]["acc_mean"] == "" and rows[0]["acc_runs"] == ""
    assert not os.path.exists(MARKER)
    assert "Rejected or failed" in (project / "leaderboard" / "LEADERBOARD.md").read_text()


def test_run_track_evaluates_every_submission_of_the_track(project, capsys):
    add_team(project, "alpha")
    add_team(project, "beta")
    add_team(project, "gen", files={}, spec="team: gen\nmethod: g\ntrack: generative\ndatasets: [digits]\n")
    add_team(project, "broken", files={}, spec="team: [\n")
    code = main(["run", "--track", "fixed-ipc", "--dataset", "digits", "--root", str(project), *QUICK])
    assert code == 0
    assert sorted(r["team"] for r in read_results(project)) == ["alpha", "beta"]
    assert "skipping submissions/broken" in capsys.readouterr().err


def test_baseline_random_writes_the_example_and_a_reference_row(project):
    assert main(["baseline", "random", "--dataset", "digits", "--root", str(project), *QUICK]) == 0
    written = project / "submissions" / "random_ipc10" / "digits.safetensors"
    assert written.read_bytes() == (EXAMPLE / "digits.safetensors").read_bytes()  # the shipped example is this
    assert "datasets:\n- digits" in (written.parent / "submission.yaml").read_text()
    row = read_results(project)[0]
    assert (row["team"], row["track"], row["ipc"]) == ("Random 10 IPC", "reference", "10")


def test_baseline_full_takes_the_whole_training_set_and_the_epochs_of_the_ipc_epoch_rule(project):
    """The full-data reference row is planned as the IPC-epoch rule says (`make demo` trains it)."""
    from benchmark.baseline import baseline_tasks
    from benchmark.options import Options
    from benchmark.protocol import load_protocol

    opts = Options(protocol=load_protocol(), root=project)
    [task] = baseline_tasks(opts, "full", ["digits"])
    job = task.prepare()
    assert job.ipc == 124 and len(job.labels) == 1297  # the smallest digits class in the train split
    assert job.protocol_epochs == 81 and opts.train_config(job.protocol_epochs).epochs == 81  # 10,000 image-steps / 124
    assert job.fields["team"] == "Full dataset" and job.fields["standard"] and not job.leak_checked
