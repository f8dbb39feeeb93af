"""What the classic methods share: the training split as network input, the synthetic set
initialised from real images, the evaluation network and its features, and the output file."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import Tensor, nn

from evaluator import archs, convnet, dsa
from evaluator.atomic import atomic_write
from evaluator.normalize import to_uint8
from evaluator.recipe import DsaParams

from ..baseline import random_indices


MIN_NORM_SIDE = 4  # the smallest map side an instance norm of the matching network sees


@dataclass(frozen=True)
class Source:
    """A dataset's training split as the evaluation network sees it."""
    dataset: str
    images: Tensor  # normalised float N x 3 x R x R
    labels: Tensor  # int64 N
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    augmentation: DsaParams
    arch: str

    @property
    def resolution(self) -> int:
        return self.images.shape[-1]

    def members(self, c: int) -> Tensor:
        return torch.nonzero(self.labels == c).flatten()

    def real_batch(self, c: int, n: int, gen: torch.Generator) -> Tensor:
        """Up to n random training images of class c (DC/DM's get_images)."""
        idx = self.members(c)
        return self.images[idx[torch.randperm(len(idx), generator=gen)[:n]]]

    def network(self, seed: int) -> nn.Module:
        """A freshly initialised evaluation network (seeded)."""
        return archs.seeded(self.arch, self.num_classes, self.resolution, seed)

    def matching_network(self, seed: int) -> nn.Module:
        """The network a gradient-matching method differentiates twice: the evaluation ConvNet with
        as many blocks (at most its 3) as keep every instance norm over at least 4x4 positions. At
        32 px, the papers' setting, that is the evaluation network itself; at 8 px it is two blocks:
        the third block normalises each channel over a 2x2 map, whose second derivatives are so
        steep that matching gradients there does not carry from one network to the next
        (docs/METHODS.md). Another evaluation network is used as it is."""
        if self.arch != archs.CHALLENGE:
            return self.network(seed)
        depth = convnet.DEPTH
        while depth > 1 and self.resolution >> (depth - 1) < MIN_NORM_SIDE:
            depth -= 1
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return convnet.convnet(self.num_classes, self.resolution, depth)


def initial_set(src: Source, ipc: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """ipc random real images per class (class-ordered), the usual initialisation of DC, DSA and DM:
    the random baseline's draw (`random_indices`)."""
    idx = random_indices(src.labels, src.num_classes, ipc, gen)
    return src.images[idx].clone(), src.labels[idx].clone()


def features(net: nn.Module, x: Tensor) -> Tensor:
    """The ConvNet's embedding: everything but the final classifier."""
    return net[:-1](x)


def siamese(batches: list[Tensor], p: DsaParams, host: torch.Generator) -> list[Tensor]:
    """The same DSA operation with the same parameters on every batch (DSA's Siamese mode)."""
    op, seed = dsa.choose_op(p, host), int(torch.randint(2**31 - 1, (1,), generator=host))
    with dsa.shared_parameters():
        return [dsa.augment(b, op, p, torch.Generator().manual_seed(seed)) for b in batches]


def step(opt: torch.optim.Optimizer, loss: Tensor) -> None:
    opt.zero_grad()
    loss.backward()
    opt.step()


def report(log, name: str, it: int, iterations: int, loss: Tensor, classes: int) -> None:
    """A progress line about ten times per run."""
    if it % max(1, iterations // 10) == 0 or it == iterations - 1:
        log(f"{name}: iteration {it + 1}/{iterations}, loss {loss.item() / classes:.4f} per class")


def save(src: Source, images: Tensor, labels: Tensor, out_dir: Path, meta: dict[str, str]) -> Path:
    """Write <out_dir>/<dataset>.safetensors: uint8 pixels (what the harness evaluates), int64 labels."""
    pixels = to_uint8(images.detach(), src.mean, src.std)
    path = Path(out_dir) / f"{src.dataset}.safetensors"
    tensors = {"images": pixels.contiguous(), "labels": labels.to(torch.int64).contiguous()}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))
    return path
