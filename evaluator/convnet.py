"""The challenge's evaluation network, ConvNetD3-W128 (docs/PROTOCOL.md).

Three blocks of Conv(3x3, 128) -> instance norm (GroupNorm with one group per channel)
-> ReLU -> AvgPool(2), then one linear classifier. PyTorch default initialisation.
"""
from __future__ import annotations

from torch import nn

WIDTH = 128
DEPTH = 3


def convnet_d3_w128(num_classes: int, resolution: int, channels: int = 3) -> nn.Sequential:
    return convnet(num_classes, resolution, DEPTH, channels)


def convnet(num_classes: int, resolution: int, depth: int, channels: int = 3) -> nn.Sequential:
    """The same blocks, `depth` of them (the challenge's network has 3; a distillation method may
    need fewer at 8 px, see benchmark/methods/common.py)."""
    if resolution % (2**depth):
        raise ValueError(f"resolution {resolution} is not divisible by {2**depth}; the ConvNet needs it to be")
    layers: list[nn.Module] = []
    in_ch = channels
    for _ in range(depth):
        layers += [
            nn.Conv2d(in_ch, WIDTH, kernel_size=3, padding=1),
            nn.GroupNorm(WIDTH, WIDTH, affine=True),
            nn.ReLU(inplace=True),
            nn.AvgPool2d(kernel_size=2, stride=2),
        ]
        in_ch = WIDTH
    feat = resolution // (2**depth)
    layers += [nn.Flatten(), nn.Linear(WIDTH * feat * feat, num_classes)]
    return nn.Sequential(*layers)


def conv_flops_per_image(resolution: int, num_classes: int, channels: int = 3) -> int:
    """Multiply-accumulates x2 of one forward pass (convolutions and the classifier)."""
    flops, in_ch, size = 0, channels, resolution
    for _ in range(DEPTH):
        flops += 2 * size * size * WIDTH * in_ch * 9
        in_ch, size = WIDTH, size // 2
    flops += 2 * WIDTH * size * size * num_classes
    return flops
