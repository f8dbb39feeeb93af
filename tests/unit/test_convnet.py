import pytest
import torch
from torch import nn

from evaluator.archs import seeded
from evaluator.convnet import conv_flops_per_image, convnet_d3_w128


@pytest.mark.parametrize("res,classes,feat", [(8, 10, 1), (32, 100, 4), (64, 200, 8)])
def test_architecture_matches_protocol(res, classes, feat):
    net = convnet_d3_w128(classes, res)
    convs = [m for m in net if isinstance(m, nn.Conv2d)]
    norms = [m for m in net if isinstance(m, nn.GroupNorm)]
    pools = [m for m in net if isinstance(m, nn.AvgPool2d)]
    assert [c.out_channels for c in convs] == [128] * 3 and convs[0].in_channels == 3
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    assert all(n.num_groups == 128 and n.num_channels == 128 and n.affine for n in norms) and len(norms) == 3
    assert all(p.kernel_size == 2 and p.stride == 2 for p in pools) and len(pools) == 3
    linear = net[-1]
    assert linear.in_features == 128 * feat * feat and linear.out_features == classes
    assert net(torch.randn(2, 3, res, res)).shape == (2, classes)


def test_resolution_must_divide_by_8():
    with pytest.raises(ValueError, match="divisible by 8"):
        convnet_d3_w128(10, 30)


def test_seeded_model_depends_on_seed_only():
    a, b, c = seeded("convnet", 10, 32, 1), seeded("convnet", 10, 32, 1), seeded("convnet", 10, 32, 2)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a[0].weight, c[0].weight)


def test_flops_count_of_cifar_shape():
    # conv1 32x32x128x3x9, conv2 16x16x128x128x9, conv3 8x8x128x128x9, linear 2048x100; x2 for MACs
    expected = 2 * (32 * 32 * 128 * 3 * 9 + 16 * 16 * 128 * 128 * 9 + 8 * 8 * 128 * 128 * 9 + 2048 * 100)
    assert conv_flops_per_image(32, 100) == expected
