"""The classic methods (benchmark/methods): their building blocks do what the papers say, and a
tiny run of each is deterministic for a seed and changes (or, for herding, selects) images."""
import pytest
import torch

from benchmark.methods import common, dm, dsa, herding
from benchmark.protocol import load_protocol
from evaluator import dsa as ops


def tiny_source(n_per_class=12, classes=3, seed=0) -> common.Source:
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(n_per_class * classes, 3, 8, 8, generator=g)
    labels = torch.arange(classes).repeat_interleave(n_per_class)
    images += labels.view(-1, 1, 1, 1).float()  # separable classes
    return common.Source("tiny", images, labels, classes, (0.5,) * 3, (0.25,) * 3,
                         load_protocol().recipe.augmentation, "convnet")


def test_herd_tracks_the_mean_greedily():
    feats = torch.tensor([[0.0, 0.0], [10.0, 0.0], [-10.0, 0.0], [1.0, 0.0], [0.0, 9.0]])
    picks = herding.herd(feats, 3)
    # mean (0.2, 1.8): first the point nearest it, then those that pull the running mean towards it
    assert picks == [0, 3, 4]
    assert sorted(herding.herd(feats, 10)) == [0, 1, 2, 3, 4]  # never more than the class has


def test_gradient_distance_is_zero_for_parallel_gradients_and_skips_biases():
    g = [torch.randn(4, 3, 3, 3), torch.randn(4), torch.randn(2, 4)]
    assert float(dsa.gradient_distance([2 * t for t in g], g)) == pytest.approx(0.0, abs=1e-5)
    flipped = [-g[0], torch.randn(4), g[2]]
    assert float(dsa.gradient_distance(flipped, g)) == pytest.approx(2.0 * 4, rel=1e-4)  # 4 units at cos -1


def test_the_matching_network_normalises_no_map_smaller_than_4x4_and_is_the_evaluation_network_at_32px():
    def normalised_sides(net, resolution):
        sides = []
        hooks = [m.register_forward_hook(lambda m, i, o: sides.append(i[0].shape[-1]))
                 for m in net.modules() if isinstance(m, torch.nn.GroupNorm)]
        net(torch.zeros(1, 3, resolution, resolution))
        [h.remove() for h in hooks]
        return sides

    small = tiny_source()
    assert normalised_sides(small.network(0), 8) == [8, 4, 2]  # the evaluation network at 8 px
    assert normalised_sides(small.matching_network(0), 8) == [8, 4]
    assert small.matching_network(0)(torch.zeros(2, 3, 8, 8)).shape == (2, 3)
    big = common.Source("big", torch.zeros(3, 3, 32, 32), torch.arange(3), 3, (0.5,) * 3, (0.25,) * 3,
                        small.augmentation, "convnet")
    same = zip(big.matching_network(5).state_dict().values(), big.network(5).state_dict().values())
    assert all(torch.equal(a, b) for a, b in same)


def test_siamese_augmentation_transforms_both_batches_alike():
    p = load_protocol().recipe.augmentation
    a = torch.randn(5, 3, 8, 8)
    for seed in range(12):  # every op is drawn in a dozen batches
        x, y = common.siamese([a, a[:2].clone()], p, torch.Generator().manual_seed(seed))
        assert torch.allclose(x[:2], y, atol=1e-6)
    with ops.shared_parameters():
        one = ops.augment(a, "rotate", p, torch.Generator().manual_seed(0))
    per_image = ops.augment(a, "rotate", p, torch.Generator().manual_seed(0))
    assert not torch.allclose(one, per_image)  # outside the block, each image its own angle


@pytest.mark.parametrize("method,kw", [(dm, {"iterations": 2}),
                                       (dsa, {"iterations": 1, "outer_loop": 2, "inner_loop": 1, "batch_real": 8})])
def test_a_tiny_run_is_deterministic_and_learns_images(method, kw):
    src = tiny_source()
    first, labels = method.distill(src, 2, seed=3, log=lambda *_: None, **kw)
    again, _ = method.distill(src, 2, seed=3, log=lambda *_: None, **kw)
    start, _ = common.initial_set(src, 2, torch.Generator().manual_seed(3))
    assert torch.equal(first, again) and labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert not torch.allclose(first, start)  # the images moved from their real initialisation


def test_herding_selects_training_images_of_each_class():
    src = tiny_source()
    images, labels = herding.distill(src, 2, seed=0, epochs=1, log=lambda *_: None)
    assert labels.tolist() == [0, 0, 1, 1, 2, 2]
    for img, lab in zip(images, labels):
        members = src.images[src.labels == lab]
        assert (members - img).abs().flatten(1).sum(1).min() == 0


@pytest.mark.parametrize("team", ["herding_ipc10", "dm_ipc10", "dsa_ipc10"])
def test_each_shipped_method_file_was_made_by_its_script(team):
    """The folder's distill.sh names the method, seed and iterations its file's metadata records."""
    import shlex

    from safetensors import safe_open
    from conftest import ROOT

    folder = ROOT / "submissions" / team
    command = shlex.split(next(line for line in (folder / "distill.sh").read_text().splitlines()
                               if line.startswith("exec bench distill")))
    with safe_open(str(folder / "photodigits.safetensors"), "pt") as f:
        meta = f.metadata()
        labels = f.get_tensor("labels")
    assert command[3] == meta["method"] == team.split("_")[0] and meta["dataset"] == "photodigits"
    assert command[command.index("--seed") + 1] == meta["seed"] and meta["ipc"] == "10"
    iterations = command[command.index("--iterations") + 1] if "--iterations" in command else None
    expected = "'defaults'" if iterations is None else repr({"epochs" if team.startswith("herding") else "iterations":
                                                             int(iterations)})
    assert meta["settings"] == expected
    assert torch.bincount(labels).tolist() == [10] * 10
