"""Herding (Welling, ICML 2009), the coreset of DC-BENCH and iCaRL: in the feature space of a
ConvNet trained briefly on the whole training split, pick per class, one at a time, the image
that brings the mean of the picked images closest to the class mean."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .common import Source, features, step


def train_embedder(src: Source, seed: int, epochs: int, batch: int = 256, lr: float = 0.01) -> torch.nn.Module:
    """The evaluation network trained for a few epochs on the training split (SGD, momentum 0.9)."""
    net = src.network(seed)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(src.labels), generator=gen)
        for lo in range(0, len(order), batch):
            idx = order[lo : lo + batch]
            step(opt, F.cross_entropy(net(src.images[idx]), src.labels[idx]))
    return net.eval()


def herd(feats: Tensor, k: int) -> list[int]:
    """Indices (into feats) of k samples chosen greedily so their running mean tracks the mean."""
    mu = feats.mean(0)
    chosen: list[int] = []
    total = torch.zeros_like(mu)
    available = torch.ones(len(feats), dtype=torch.bool)
    for count in range(1, min(k, len(feats)) + 1):
        gap = ((total + feats) / count - mu).norm(dim=1)
        gap[~available] = float("inf")
        i = int(gap.argmin())
        chosen.append(i)
        available[i] = False
        total += feats[i]
    return chosen


def distill(src: Source, ipc: int, seed: int, epochs: int = 10, log=print) -> tuple[Tensor, Tensor]:
    net = train_embedder(src, seed, epochs)
    picks = []
    with torch.no_grad():
        for c in range(src.num_classes):
            members = src.members(c)
            feats = torch.cat([features(net, src.images[members[lo : lo + 1024]]) for lo in range(0, len(members), 1024)])
            picks.append(members[herd(feats, ipc)])
    idx = torch.cat(picks)
    log(f"herding: {len(idx)} images picked in the features of a ConvNet trained {epochs} epochs")
    return src.images[idx].clone(), src.labels[idx].clone()
