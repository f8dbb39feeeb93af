"""The networks an image set can be evaluated with: a registry of builders.

    model = build("resnet18", num_classes=100, resolution=32)

`convnet` (ConvNetD3-W128) is the challenge's network and its score. The cross-architecture set
follows the dataset-distillation evaluation pool (MTT, DC-BENCH, GLaD): small AlexNet, VGG-11 and
ResNet-18 with instance normalisation, and a ViT. Each works at 8, 32 and 64 px. timm builds what
it can (ResNet-18 from its ResNet class, the ViT from its factory, any `timm:<name>`); the two
written here have no timm counterpart of the right size. Every network starts from PyTorch's (or
timm's) default initialisation, seeded by the caller.
"""
from __future__ import annotations

import difflib
from typing import Callable

import torch
from torch import nn

from .convnet import convnet_d3_w128
from .errors import ArchitectureError
from .recipe import ARCHITECTURES, CHALLENGE, TIMM_PREFIX, check_name  # noqa: F401  (CHALLENGE: archs.CHALLENGE)


def instance_norm(num_channels: int, **_) -> nn.GroupNorm:
    """Instance normalisation as the distillation pool uses it: GroupNorm with one group per channel."""
    return nn.GroupNorm(num_channels, num_channels, affine=True)


def resnet18(num_classes: int, resolution: int) -> nn.Module:
    """ResNet-18 (BasicBlock, 2-2-2-2) from timm with instance norm and a CIFAR-style stem: a 3x3
    convolution and no max-pool; stride 2 in that convolution at 64 px (as DD-Ranking's res=64
    variants), stride 1 below. The last stage sees 4 x 4 maps at 32 and 64 px; at 8 px the last two
    stages are dilated instead of strided (timm's output_stride) to keep 4 x 4 too, since instance
    norm over a 1 x 1 map outputs zeros."""
    from timm.models.resnet import BasicBlock, ResNet

    # timm's output_stride counts its own stem's 4x reduction, which the CIFAR stem does not have
    model = ResNet(BasicBlock, (2, 2, 2, 2), num_classes=num_classes, norm_layer=instance_norm,
                   output_stride=8 if resolution < 16 else 32,
                   zero_init_last=False)  # the pool's ResNet starts its last norm at 1, not 0
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=2 if resolution >= 64 else 1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


def vgg11(num_classes: int, resolution: int) -> nn.Module:
    """VGG-11 (configuration A) with instance norm and one linear head, about 9 M parameters.
    Written here: timm's vgg11 is the 129 M-parameter ImageNet network with a 4096-wide MLP head.
    Inner max-pools stop at 2 x 2 maps (at 32 px the last block sees 2 x 2 too; at digits' 8 px
    more pools would leave instance norm a 1 x 1 map, whose output is zero)."""
    layers: list[nn.Module] = []
    channels, size = 3, resolution
    for i, item in enumerate(VGG11):
        if item == "M":
            if size > 2 or (i == len(VGG11) - 1 and size > 1):
                layers.append(nn.MaxPool2d(2, 2))
                size //= 2
            continue
        layers += [nn.Conv2d(channels, item, 3, padding=1), instance_norm(item), nn.ReLU(inplace=True)]
        channels = item
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels * size * size, num_classes))


def alexnet(num_classes: int, resolution: int) -> nn.Module:
    """The distillation pool's small AlexNet (convolutions 128-192-256-192-192, no norm), written
    here: timm has no AlexNet. Three max-pools, then one linear layer."""
    size = resolution // 8
    return nn.Sequential(
        nn.Conv2d(3, 128, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(128, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(192, 256, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 192, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(192, 192, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(192 * size * size, num_classes))


def vit(num_classes: int, resolution: int) -> nn.Module:
    """ViT-Tiny from timm at the dataset's resolution: an 8 x 8 grid of patches (patch 4 at 32 px,
    8 at 64 px, 1 at 8 px)."""
    import timm

    return timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=resolution,
                             patch_size=max(1, resolution // 8), num_classes=num_classes)


def _timm_model(name: str, num_classes: int, resolution: int) -> nn.Module:
    import timm

    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ArchitectureError(f"--arch timm:{name}: timm has no model of that name{hint}; see timm.list_models()")
    try:
        model = timm.create_model(name, pretrained=False, num_classes=num_classes, img_size=resolution)
    except TypeError:  # the model takes no img_size: a convolutional network
        model = timm.create_model(name, pretrained=False, num_classes=num_classes)
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(2, 3, resolution, resolution))
    except Exception as exc:  # too small an input for its downsampling, a fixed input size, ...
        raise ArchitectureError(f"--arch timm:{name}: cannot take {resolution} px images "
                                f"({' '.join(str(exc).split())[:120]}); choose another model") from None
    return model.train()


BUILDERS: dict[str, Callable[[int, int], nn.Module]] = {
    "convnet": convnet_d3_w128, "resnet18": resnet18, "vgg11": vgg11, "alexnet": alexnet, "vit": vit}
assert tuple(BUILDERS) == ARCHITECTURES, "every architecture name has its builder, in the same order"


def build(name: str, num_classes: int, resolution: int) -> nn.Module:
    check_name(name)
    if name.startswith(TIMM_PREFIX):
        return _timm_model(name[len(TIMM_PREFIX):], num_classes, resolution)
    return BUILDERS[name](num_classes, resolution)


def seeded(name: str, num_classes: int, resolution: int, seed: int) -> nn.Module:
    """A default-initialised network whose weights depend on the seed alone (built on the CPU)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build(name, num_classes, resolution)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
