"""Protocol values reach a fixed-IPC evaluation; a preset row is non-standard and says why."""
import dataclasses

import pytest
import torch
from conftest import add_team, read_results

from benchmark import tracks
from benchmark.options import Options, Overrides
from benchmark.protocol import load_protocol

P = load_protocol()


def test_fixed_ipc_values_reach_the_track(project):
    add_team(project, "alpha")  # 10 images per class
    p = dataclasses.replace(P, fixed_ipc=5, fixed_epochs=1)
    [outcome] = tracks.submit(Options(protocol=p, overrides=Overrides(runs=1), root=project), "alpha")
    assert outcome.status == "invalid" and "more than the 50 accepted" in outcome.message  # 5 per class x 10
    p = dataclasses.replace(P, fixed_epochs=3)
    [outcome] = tracks.submit(Options(protocol=p, overrides=Overrides(runs=1), root=project), "alpha")
    assert outcome.status == "ok" and outcome.result.epochs == 3 and outcome.result.ipc == 10


def test_the_quick_preset_row_is_non_standard_and_says_why(project):
    from benchmark.cli import main

    add_team(project, "alpha")
    assert main(["submit", "alpha", "--root", str(project), "--preset", "quick", "--device", "cpu"]) == 0
    row = read_results(project)[0]
    assert (row["standard"], row["nonstandard"], row["runs"], row["epochs"]) == \
        ("false", "preset=quick runs=1 epochs=2", "1", "2")
    with pytest.raises(SystemExit):  # argparse: not one of the protocol's presets
        main(["submit", "alpha", "--root", str(project), "--preset", "slow"])


def test_the_normalization_reaches_the_network_input(project):
    """The images trained on and the test set are normalised with the protocol's statistics."""
    add_team(project, "alpha")
    p = dataclasses.replace(P, normalization={**P.normalization, "digits": ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))})
    [task] = tracks.submission_tasks(Options(protocol=p, root=project), "alpha")
    job = task.prepare()
    assert torch.allclose(job.images, (job.preview.float() / 255 - 0.5) / 0.25, atol=1e-5)
    assert torch.allclose(job.ds.normalized_test, (job.ds.test_images.float() / 255 - 0.5) / 0.25, atol=1e-5)
    released = tracks.submission_tasks(Options(protocol=P, root=project), "alpha")[0].prepare()
    assert not torch.allclose(released.images, job.images)
