"""Dataset condensation with distribution matching, DM (Zhao & Bilen, WACV 2023).

Every iteration samples a freshly initialised ConvNet; for every class the synthetic images are
moved so that their mean embedding matches that of a batch of real images of the class, both
batches under the same DSA augmentation. Settings as the authors' code: real batch 256, images
learnt by SGD with momentum 0.5, initialised from real images; the learning rate, 1 for 32x32
images there, is scaled by (32 / resolution)^2 (16 at 8 px): the embedding has 128 x (R/8)^2
numbers, so at 8 px the loss, a sum over them, and its gradients are about 16 times smaller."""
from __future__ import annotations

import torch
from torch import Tensor

from .common import Source, features, initial_set, report, siamese, step


def distill(src: Source, ipc: int, seed: int, iterations: int = 1000, lr: float | None = None,
            batch_real: int = 256, log=print) -> tuple[Tensor, Tensor]:
    gen, host = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
    syn, labels = initial_set(src, ipc, gen)
    syn.requires_grad_(True)
    lr = (32 / src.resolution) ** 2 if lr is None else lr
    opt = torch.optim.SGD([syn], lr=lr, momentum=0.5)
    for it in range(iterations):
        net = src.network(seed * 1_000_003 + it)
        for p in net.parameters():
            p.requires_grad_(False)
        loss = syn.new_zeros(())
        for c in range(src.num_classes):
            real = src.real_batch(c, batch_real, gen)
            real, fake = siamese([real, syn[c * ipc : (c + 1) * ipc]], src.augmentation, host)
            with torch.no_grad():
                target = features(net, real).mean(0)
            loss = loss + ((target - features(net, fake).mean(0)) ** 2).sum()
        step(opt, loss)
        report(log, "dm", it, iterations, loss, src.num_classes)
    return syn.detach(), labels
