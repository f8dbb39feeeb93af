"""The official scorer's training loop, in its shape, as the baseline of the throughput benchmark.

Written from the description of the organisers' script (docs/PROTOCOL.md): a DataLoader
over the images, DSA whose scale/rotate matrices are built image by image in Python from host
random numbers, and per-batch loss.item() and numpy accuracy (a host-device sync every batch).
Not used for scoring.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from evaluator.convnet import convnet_d3_w128

STRATEGY = ("color", "crop", "cutout", "flip", "scale", "rotate")


def _affine(x, theta):
    grid = F.affine_grid(theta, x.shape, align_corners=True).to(x.device)
    return F.grid_sample(x, grid, align_corners=True)


def scale(x):
    sx = torch.rand(x.shape[0]) * (1.2 - 1 / 1.2) + 1 / 1.2
    sy = torch.rand(x.shape[0]) * (1.2 - 1 / 1.2) + 1 / 1.2
    theta = [[[sx[i], 0, 0], [0, sy[i], 0]] for i in range(x.shape[0])]  # per image, in Python
    return _affine(x, torch.tensor(theta, dtype=torch.float))


def rotate(x):
    a = (torch.rand(x.shape[0]) - 0.5) * 2 * 15 / 180 * math.pi
    theta = [[[math.cos(a[i]), math.sin(-a[i]), 0], [math.sin(a[i]), math.cos(a[i]), 0]] for i in range(x.shape[0])]
    return _affine(x, torch.tensor(theta, dtype=torch.float))


def flip(x):
    return torch.where(torch.rand(x.shape[0], 1, 1, 1, device=x.device) < 0.5, x.flip(3), x)


def color(x):
    x = x + (torch.rand(x.shape[0], 1, 1, 1, device=x.device) - 0.5)
    m = x.mean(dim=1, keepdim=True)
    x = (x - m) * (torch.rand(x.shape[0], 1, 1, 1, device=x.device) * 2) + m
    m = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - m) * (torch.rand(x.shape[0], 1, 1, 1, device=x.device) + 0.5) + m


def crop(x):
    s = int(x.size(2) * 0.125 + 0.5)
    tx = torch.randint(-s, s + 1, size=[x.size(0), 1, 1], device=x.device)
    ty = torch.randint(-s, s + 1, size=[x.size(0), 1, 1], device=x.device)
    gb, gx, gy = torch.meshgrid(torch.arange(x.size(0), device=x.device), torch.arange(x.size(2), device=x.device),
                                torch.arange(x.size(3), device=x.device), indexing="ij")
    gx = torch.clamp(gx + tx + 1, 0, x.size(2) + 1)
    gy = torch.clamp(gy + ty + 1, 0, x.size(3) + 1)
    pad = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
    return pad.permute(0, 2, 3, 1).contiguous()[gb, gx, gy].permute(0, 3, 1, 2)


def cutout(x):
    c = int(x.size(2) * 0.5 + 0.5)
    ox = torch.randint(0, x.size(2) + (1 - c % 2), size=[x.size(0), 1, 1], device=x.device)
    oy = torch.randint(0, x.size(3) + (1 - c % 2), size=[x.size(0), 1, 1], device=x.device)
    gb, gx, gy = torch.meshgrid(torch.arange(x.size(0), device=x.device), torch.arange(c, device=x.device),
                                torch.arange(c, device=x.device), indexing="ij")
    gx = torch.clamp(gx + ox - c // 2, min=0, max=x.size(2) - 1)
    gy = torch.clamp(gy + oy - c // 2, min=0, max=x.size(3) - 1)
    mask = torch.ones(x.size(0), x.size(2), x.size(3), dtype=x.dtype, device=x.device)
    mask[gb, gx, gy] = 0
    return x * mask.unsqueeze(1)


OPS = {"color": color, "crop": crop, "cutout": cutout, "flip": flip, "scale": scale, "rotate": rotate}


def make_pass(n_classes: int, res: int, ipc: int, device: str):
    """One training pass of the official loop's shape over random data; returns (pass, images)."""
    n = ipc * n_classes
    data = torch.utils.data.TensorDataset(torch.randn(n, 3, res, res), torch.arange(n_classes).repeat_interleave(ipc))
    loader = torch.utils.data.DataLoader(data, batch_size=256, shuffle=True, num_workers=0)
    net = convnet_d3_w128(n_classes, res).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def one_pass() -> None:
        for xb, yb in loader:
            xb, yb = xb.float().to(device), yb.long().to(device)
            xb = OPS[STRATEGY[torch.randint(0, len(STRATEGY), size=(1,)).item()]](xb)
            out = net(xb)
            loss = F.cross_entropy(out, yb)
            _ = np.sum(np.equal(np.argmax(out.cpu().data.numpy(), axis=-1), yb.cpu().data.numpy()))
            _ = loss.item()
            opt.zero_grad()
            loss.backward()
            opt.step()

    return one_pass, n
