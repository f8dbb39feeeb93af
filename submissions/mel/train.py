"""Train mel's GAN on a prepared dataset's training split (run from the harness checkout).

    python submissions/mel/train.py --dataset digits --steps 3000

Writes weights/<dataset>.safetensors next to this file. Both heads are trained: the full one
against the real images, the half-resolution one against real images downsampled 2x.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]  # this folder (model) and the harness (evaluator)

import model  # noqa: E402
from evaluator.data import load_dataset  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="digits")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    ds = load_dataset(args.dataset, HERE.parents[1] / "datasets", need_train=True)
    real = ds.train_images.float() / 127.5 - 1
    labels = ds.train_labels
    C, R = ds.info.num_classes, ds.info.resolution
    g = model.Generator(C, R)
    d_full, d_low = model.Discriminator(C, R), model.Discriminator(C, R // 2)
    opt_g = torch.optim.Adam(g.parameters(), args.lr, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam([*d_full.parameters(), *d_low.parameters()], args.lr, betas=(0.0, 0.99))
    start = time.time()
    for step in range(args.steps):
        idx = torch.randint(len(real), (args.batch,))
        x, y = real[idx], labels[idx]
        x_low = F.avg_pool2d(x, 2)
        z = torch.randn(args.batch, g.z_dim)
        with torch.no_grad():
            fake, fake_low = g(z, y), g(z, y, low_res=True)
        loss_d = (F.relu(1 - d_full(x, y)).mean() + F.relu(1 + d_full(fake, y)).mean()
                  + F.relu(1 - d_low(x_low, y)).mean() + F.relu(1 + d_low(fake_low, y)).mean())
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        z = torch.randn(args.batch, g.z_dim)
        loss_g = -d_full(g(z, y), y).mean() - d_low(g(z, y, low_res=True), y).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        if step % 500 == 0 or step == args.steps - 1:
            print(f"step {step}: loss_d {loss_d.item():.3f} loss_g {loss_g.item():.3f} ({time.time() - start:.0f} s)")
    out = HERE / "weights" / f"{args.dataset}.safetensors"
    model.save(g.eval(), out)
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
