"""A small class-conditional GAN with two outputs: full resolution and half resolution.

The half-resolution head (the thesis' mixed-resolution option) costs one upsampling block less;
its images are upscaled to the dataset's resolution after generation. Hinge loss, projection
discriminators (one per resolution), truncation by pulling latents toward their mean.
"""
from __future__ import annotations

import json

import torch
import torch.nn.functional as F
from torch import nn


class Generator(nn.Module):
    def __init__(self, num_classes: int, resolution: int, z_dim: int = 64, width: int = 128):
        super().__init__()
        self.config = dict(num_classes=num_classes, resolution=resolution, z_dim=z_dim, width=width)
        self.z_dim, self.base = z_dim, 4
        self.embed = nn.Embedding(num_classes, z_dim)
        self.fc = nn.Linear(2 * z_dim, width * self.base * self.base)
        n_up = max(0, (resolution // self.base).bit_length() - 1)  # 4 -> resolution
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(width, width, 3, padding=1),
                          nn.BatchNorm2d(width), nn.LeakyReLU(0.2)) for _ in range(n_up))
        self.to_rgb = nn.Conv2d(width, 3, 1)
        self.to_rgb_low = nn.Conv2d(width, 3, 1)

    def forward(self, z: torch.Tensor, y: torch.Tensor, low_res: bool = False) -> torch.Tensor:
        h = self.fc(torch.cat([z, self.embed(y)], 1)).view(z.shape[0], -1, self.base, self.base)
        h = F.leaky_relu(h, 0.2)
        blocks = self.blocks[:-1] if low_res and len(self.blocks) else self.blocks
        for block in blocks:
            h = block(h)
        return torch.tanh((self.to_rgb_low if low_res else self.to_rgb)(h))  # in [-1, 1]


class Discriminator(nn.Module):
    def __init__(self, num_classes: int, resolution: int, width: int = 128):
        super().__init__()
        layers, ch, size = [], 3, resolution
        while size > 2:
            layers += [nn.Conv2d(ch, width, 3, padding=1), nn.LeakyReLU(0.2), nn.AvgPool2d(2)]
            ch, size = width, size // 2
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.out = nn.Linear(width * size * size, 1)
        self.embed = nn.Embedding(num_classes, width * size * size)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        return self.out(h).squeeze(1) + (self.embed(y) * h).sum(1)  # projection discriminator


def sample_latents(n: int, z_dim: int, truncation: float, generator: torch.Generator) -> torch.Tensor:
    """Truncation trick: z' = mean + psi (z - mean), the mean of N(0, I) being 0."""
    return truncation * torch.randn(n, z_dim, generator=generator)


def to_uint8(x: torch.Tensor, resolution: int) -> torch.Tensor:
    if x.shape[-1] != resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def save(generator: Generator, path) -> None:
    from safetensors.torch import save_file

    save_file(generator.state_dict(), str(path), metadata={"config": json.dumps(generator.config)})


def load(path) -> Generator:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), "pt") as f:
        config = json.loads(f.metadata()["config"])
    g = Generator(**config)
    g.load_state_dict(load_file(str(path)))
    return g.eval()
