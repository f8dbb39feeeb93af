"""The soft-label division through `bench`: stored and online labels, the hard-label twin row, what
the labels cost, malformed labels, and the teacher commands. A protocol file of one's own with a
3-epoch digits teacher keeps it quick (its rows are non-standard, which these tests do not need)."""
import pytest
import torch
from conftest import EXAMPLE, QUICK, add_team, read_results, released_protocol_text
from safetensors.torch import load_file, save_file

from benchmark.cli import main

CONVNET_8PX_FLOPS = 6_343_168  # one forward pass on one 8 x 8 image (tests/unit/test_softlabels.py)


@pytest.fixture
def small_teacher(tmp_path):
    path = tmp_path / "small-teacher.yaml"
    text = released_protocol_text().replace("      digits: 300\n", "      digits: 3\n")
    assert "digits: 3\n" in text
    path.write_text(text)
    return ["--protocol", str(path)]


def soft_team(project, team, labels, tensors=None):
    folder = add_team(project, team, spec=f"team: {team}\nmethod: m\ntrack: soft-label\nlabels: {labels}\n"
                                            f"datasets: [digits]\n")
    base = load_file(str(EXAMPLE / "digits.safetensors"))
    save_file({**base, **(tensors or {})}, str(folder / "digits.safetensors"))
    return folder


def run(project, team, protocol, *extra):
    return main(["submit", team, "--root", str(project), *QUICK, *protocol, *extra])


def test_stored_labels_give_a_soft_row_and_a_hard_twin_with_their_bytes(project, small_teacher):
    probs = torch.full((100, 10), 0.01)
    probs[torch.arange(100), torch.arange(100) // 10] = 0.91
    soft_team(project, "stored", "stored", {"soft_labels": probs})
    assert run(project, "stored", small_teacher) == 0
    rows = read_results(project)
    assert [(r["track"], r["labels"], r["status"]) for r in rows] == [("soft-label", "stored", "ok"),
                                                                       ("soft-label", "hard", "ok")]
    soft, hard = rows
    assert soft["label_bytes"] == str(100 * 10 * 4) and hard["label_bytes"] == str(100 * 8)
    assert soft["image_bytes"] == hard["image_bytes"] == str(100 * 3 * 8 * 8)
    assert soft["teacher"] == "" and soft["teacher_flops"] == ""  # stored: no teacher ran
    assert soft["protocol_key"] != hard["protocol_key"]
    board = (project / "leaderboard" / "LEADERBOARD.md").read_text()
    assert "| soft-label | stored (stored labels) | digits |" in board  # both rows listed apart (non-standard)
    assert "| soft-label | stored (hard labels) | digits |" in board


def test_online_labels_record_the_teacher_and_its_flops_and_share_the_hard_runs(project, small_teacher, capsys):
    soft_team(project, "online", "teacher")
    assert run(project, "online", small_teacher, "--runs", "2") == 0
    soft, hard = read_results(project)
    assert soft["labels"] == "online" and soft["label_bytes"] == "0" and hard["labels"] == "hard"
    passes, runs = 2 + 1, 2  # the quick preset's 2 epochs (passes 0..2), two runs
    assert float(soft["teacher_flops"]) == CONVNET_8PX_FLOPS * 100 * passes * runs
    assert soft["teacher_parameters"] == "300810" and len(soft["teacher"]) == 16
    assert 0 <= float(soft["teacher_acc"]) <= 100
    teachers = list((project / "datasets" / "cache" / "teachers").glob("digits-convnet-*.safetensors"))
    assert len(teachers) == 1  # trained on first use, cached
    capsys.readouterr()
    soft_team(project, "online2", "teacher")  # the same images: its hard-label runs are the first team's
    assert run(project, "online2", small_teacher, "--runs", "2") == 0
    err = capsys.readouterr().err
    assert "online2/digits (hard labels): resuming, 2 of 2 runs already finished" in err
    assert "training 3 epochs" not in err  # the cached teacher


@pytest.mark.parametrize("labels, tensors, needle", [
    ("stored", {}, "stored soft labels are 'soft_labels'"),
    ("stored", {"soft_labels": torch.full((100, 10), float("nan"))}, "contains 1000 NaN or infinite values"),
    ("stored", {"soft_labels": torch.full((100, 10), -0.1)}, "negative values"),
    ("stored", {"soft_labels": torch.full((100, 10), 0.2)}, "row 0 sums to 2"),
    ("stored", {"soft_labels": torch.full((100, 9), 1 / 9)}, "has shape (100, 9); expected (100, 10)"),
    ("teacher", {"soft_labels": torch.full((100, 10), 0.1)}, "says labels: teacher"),
])
def test_malformed_labels_are_an_invalid_row_with_one_line(project, small_teacher, labels, tensors, needle):
    soft_team(project, "bad", labels, tensors)
    assert run(project, "bad", small_teacher) == 1
    (row,) = read_results(project)
    assert row["status"] == "invalid" and needle in row["error"] and "\n" not in row["error"]


def test_the_labels_key_belongs_to_the_soft_label_track(project):
    add_team(project, "wrong", spec="team: wrong\nmethod: m\ntrack: fixed-ipc\nlabels: stored\ndatasets: [digits]\n")
    assert main(["validate", "wrong", "--root", str(project)]) == 1
    add_team(project, "none", spec="team: none\nmethod: m\ntrack: soft-label\ndatasets: [digits]\n")
    assert main(["validate", "none", "--root", str(project)]) == 1


def test_teacher_label_full_and_top_k(project, tmp_path, monkeypatch):
    """bench teacher label with the released protocol's teacher, trained for 3 epochs here."""
    from benchmark import teacher

    monkeypatch.setattr(teacher, "_config", _three_epochs(teacher._config))
    full, top = tmp_path / "full.safetensors", tmp_path / "top.safetensors"
    src = str(EXAMPLE / "digits.safetensors")
    assert main(["teacher", "label", "digits", src, "--out", str(full), "--root", str(project), "--device", "cpu"]) == 0
    assert main(["teacher", "label", "digits", src, "--out", str(top), "--top-k", "3", "--root", str(project),
                 "--device", "cpu"]) == 0
    f, t = load_file(str(full)), load_file(str(top))
    assert f["soft_labels"].shape == (100, 10) and torch.allclose(f["soft_labels"].sum(1), torch.ones(100))
    assert torch.equal(f["images"], load_file(src)["images"]) and torch.equal(f["labels"], load_file(src)["labels"])
    assert t["soft_values"].shape == t["soft_indices"].shape == (100, 3)
    assert torch.equal(t["soft_indices"], f["soft_labels"].topk(3, dim=1).indices)
    assert main(["teacher", "label", "digits", src, "--out", str(top), "--top-k", "10", "--root", str(project)]) == 2


def _three_epochs(config):
    def short(opts, dataset, arch):
        from dataclasses import replace

        return replace(config(opts, dataset, arch), epochs=3)
    return short


def test_a_teacher_of_another_network_makes_the_row_non_standard(project, small_teacher, capsys):
    soft_team(project, "other", "teacher")
    assert run(project, "other", small_teacher, "--teacher-arch", "alexnet") == 0
    soft, hard = read_results(project)
    assert "teacher=alexnet" in soft["nonstandard"].split() and soft["teacher_parameters"] != "300810"
    assert main(["submit", "other", "--root", str(project), *QUICK, "--teacher-arch", "convnett"]) == 2
    assert "--teacher-arch convnett: unknown architecture; did you mean 'convnet'?" in capsys.readouterr().err


def test_runs_are_shared_only_by_the_very_same_trained_tensors(project, capsys):
    """Runs are keyed by what is trained: the same images under two teams share them, float images
    that differ only beyond the pixel range (one clipped preview) do not."""
    from safetensors.torch import load_file as read
    from benchmark.protocol import load_protocol
    from evaluator.normalize import normalize

    mean, std = load_protocol().stats("digits")
    base = read(str(EXAMPLE / "digits.safetensors"))
    x = normalize(base["images"], mean, std)
    for team, pixel in (("a", 1.2), ("b", 1.3), ("c", 1.3)):  # pixel values above 1: the same preview (255)
        y = x.clone()
        y[0, :, 0, 0] = (pixel - torch.tensor(mean)) / torch.tensor(std)
        folder = add_team(project, team)
        (folder / "digits.safetensors").unlink(missing_ok=True)
        save_file({"images": y.contiguous(), "labels": base["labels"]}, str(folder / "digits.safetensors"))
    for team in "abc":
        assert main(["submit", team, "--root", str(project), *QUICK]) == 0
    err = capsys.readouterr().err
    assert "b/digits: resuming" not in err and "c/digits: resuming, 1 of 1 runs already finished" in err
