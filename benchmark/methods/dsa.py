"""Dataset condensation with gradient matching and differentiable Siamese augmentation, DSA
(Zhao & Bilen, ICML 2021; the gradient matching of DC, Zhao, Mopuri & Bilen, ICLR 2021).

Every iteration samples a freshly initialised ConvNet and alternates `outer_loop` times: (1) for
every class, move the synthetic images so that the network's gradient on them matches its
gradient on a real batch of the class (layer-wise cosine distance per output unit, both batches
under the same DSA augmentation); (2) train the network `inner_loop` steps on the synthetic set.
Learning rates and momenta as the authors' code (network 0.01, images 0.1, both momentum 0.5).
The network is `Source.matching_network`: the evaluation ConvNet, with two blocks instead of three
at 8 px (the third block's instance norm over a 2x2 map made the matching loss's gradient 17 times
larger and the matching not carry from one network to the next; docs/METHODS.md)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from evaluator import dsa

from .common import Source, initial_set, report, siamese, step


def gradient_distance(fake: list[Tensor], real: list[Tensor]) -> Tensor:
    """DC's matching loss: per layer and output unit, 1 - cosine of the two gradients (biases and
    normalisation parameters, one number per unit, are left out as in the authors' code)."""
    total = fake[0].new_zeros(())
    for gs, gr in zip(fake, real):
        if gs.dim() == 1:
            continue
        gs, gr = gs.reshape(gs.shape[0], -1), gr.reshape(gr.shape[0], -1)
        cos = (gs * gr).sum(-1) / (gs.norm(dim=-1) * gr.norm(dim=-1) + 1e-6)
        total = total + (1 - cos).sum()
    return total


def distill(src: Source, ipc: int, seed: int, iterations: int = 20, outer_loop: int = 10, inner_loop: int = 50,
            lr_img: float = 0.1, lr_net: float = 0.01, batch_real: int = 256, log=print) -> tuple[Tensor, Tensor]:
    gen, host = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1)
    syn, labels = initial_set(src, ipc, gen)
    syn.requires_grad_(True)
    opt_img = torch.optim.SGD([syn], lr=lr_img, momentum=0.5)
    for it in range(iterations):
        net = src.matching_network(seed * 1_000_003 + it)
        net.train()
        params = list(net.parameters())
        opt_net = torch.optim.SGD(params, lr=lr_net, momentum=0.5)
        for ol in range(outer_loop):
            loss = syn.new_zeros(())
            for c in range(src.num_classes):
                real = src.real_batch(c, batch_real, gen)
                real, fake = siamese([real, syn[c * ipc : (c + 1) * ipc]], src.augmentation, host)
                y_real = torch.full((len(real),), c, dtype=torch.int64)
                g_real = [g.detach() for g in torch.autograd.grad(F.cross_entropy(net(real), y_real), params)]
                g_fake = torch.autograd.grad(F.cross_entropy(net(fake), labels[c * ipc : (c + 1) * ipc]), params,
                                             create_graph=True)
                loss = loss + gradient_distance(list(g_fake), g_real)
            step(opt_img, loss)
            if ol == outer_loop - 1:
                break
            frozen = syn.detach()
            for _ in range(inner_loop):  # one batch: the synthetic set is smaller than DC's batch_train (256)
                x = dsa.augment(frozen, dsa.choose_op(src.augmentation, host), src.augmentation, gen)
                step(opt_net, F.cross_entropy(net(x), labels))
        report(log, "dsa", it, iterations, loss, src.num_classes)
    return syn.detach(), labels
