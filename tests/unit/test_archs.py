"""Cross-architecture evaluation: the registry, each network's shape, and the way through the CLI."""

import pytest
import torch
from conftest import ROOT, train_config
from torch import nn

from benchmark.cli import main
from benchmark.protocol import load_protocol
from evaluator import archs
from evaluator import train as tr
from evaluator.train import Task, train_and_test

DIGITS_FILE = ROOT / "submissions" / "random_ipc10" / "digits.safetensors"
PARAMETERS_AT_32PX_100_CLASSES = {"convnet": (0.4e6, 0.6e6), "resnet18": (10.5e6, 11.5e6), "vgg11": (8.5e6, 10e6),
                                  "alexnet": (1.5e6, 2.5e6), "vit": (5e6, 6e6)}


@pytest.mark.parametrize("name", sorted(archs.BUILDERS))
@pytest.mark.parametrize("resolution", [8, 32, 64])
def test_every_architecture_takes_every_resolution(name, resolution):
    model = archs.build(name, 100, resolution)
    assert model(torch.randn(2, 3, resolution, resolution)).shape == (2, 100)
    if resolution == 32:
        lo, hi = PARAMETERS_AT_32PX_100_CLASSES[name]
        assert lo < archs.parameter_count(model) < hi


@pytest.mark.parametrize("name", ["resnet18", "vgg11"])
def test_the_pool_networks_use_instance_norm_not_batch_norm(name):
    model = archs.build(name, 10, 32)
    norms = [m for m in model.modules() if isinstance(m, (nn.GroupNorm, nn.modules.batchnorm._BatchNorm))]
    assert norms and all(isinstance(m, nn.GroupNorm) and m.num_groups == m.num_channels for m in norms)


def test_resnet18_has_a_cifar_stem_and_a_strided_one_at_64px():
    small, large = archs.build("resnet18", 10, 32), archs.build("resnet18", 10, 64)
    assert small.conv1.kernel_size == (3, 3) and small.conv1.stride == (1, 1) and isinstance(small.maxpool, nn.Identity)
    assert large.conv1.stride == (2, 2)


def test_vit_cuts_an_8_by_8_grid_of_patches():
    for resolution, patch in ((8, 1), (32, 4), (64, 8)):
        assert archs.build("vit", 10, resolution).patch_embed.patch_size == (patch, patch)


def test_any_timm_model_by_name_and_clear_errors():
    assert archs.build("timm:efficientnet_b0", 10, 32)(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(archs.ArchitectureError, match="cannot take 8 px images"):
        archs.build("timm:convnext_atto", 10, 8)
    with pytest.raises(archs.ArchitectureError, match="did you mean"):
        archs.build("timm:resnet181", 10, 32)
    with pytest.raises(archs.ArchitectureError, match="known: convnet, resnet18, vgg11, alexnet, vit"):
        archs.check_name("resnet")


@pytest.mark.parametrize("name", sorted(archs.BUILDERS))
def test_the_architecture_reaches_the_loop_and_runs_are_reproducible(name):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 3, 8, 8, generator=g), torch.arange(40) % 4
    cfg = train_config(2, arch=name, compile=False)
    a = train_and_test(Task(x, y, x, y, 4), cfg, seed=3)
    b = train_and_test(Task(x, y, x, y, 4), cfg, seed=3)
    net = tr._Network.get(4, 8, cfg, compiled=False)
    assert net.arch == name and a.parameters == archs.parameter_count(archs.build(name, 4, 8))
    assert a.accuracy == b.accuracy and a.per_class == b.per_class


def test_cross_expands_to_the_protocols_unseen_set():
    p = load_protocol()
    assert p.expand_archs(None) == ("convnet",)
    assert p.expand_archs(["cross"]) == ("resnet18", "vgg11", "alexnet", "vit")
    assert p.expand_archs(["convnet", "cross", "vit", "timm:resnet18"])[-1] == "timm:resnet18"


def test_an_unknown_architecture_exits_2_naming_the_known_ones(capsys):
    assert main(["evaluate", str(DIGITS_FILE), "--dataset", "digits", "--root", str(ROOT), "--arch", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown architecture" in err and "resnet18" in err and "timm:" in err


@pytest.mark.parametrize("name", sorted(archs.BUILDERS))
@pytest.mark.parametrize("resolution", [8, 32, 64])
def test_no_instance_norm_sees_a_single_pixel(name, resolution):
    """Instance norm over a 1 x 1 map outputs zeros: a network built so would learn nothing."""
    model = archs.build(name, 10, resolution)
    sizes = []
    for m in model.modules():
        if isinstance(m, nn.GroupNorm):
            m.register_forward_hook(lambda mod, inp, out: sizes.append(inp[0].shape[2:].numel()))
    model(torch.randn(2, 3, resolution, resolution))
    assert min(sizes, default=2) > 1
