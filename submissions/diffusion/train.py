"""Train the class-conditional pixel-space diffusion model (run from the harness checkout).

    python submissions/diffusion/train.py --dataset digits --steps 3000

A diffusers UNet2DModel with class embeddings, epsilon prediction under a cosine DDPM schedule.
Writes weights/<dataset>/ (the UNet and the scheduler config) next to this file.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the harness (evaluator) for the dataset

from diffusers import DDPMScheduler, UNet2DModel  # noqa: E402

from evaluator.data import load_dataset  # noqa: E402


def build_unet(num_classes: int, resolution: int) -> UNet2DModel:
    return UNet2DModel(sample_size=resolution, in_channels=3, out_channels=3, layers_per_block=1,
                       block_out_channels=(32, 64), down_block_types=("DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D"), num_class_embeds=num_classes, norm_num_groups=16)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="digits")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    ds = load_dataset(args.dataset, HERE.parents[1] / "datasets", need_train=True)
    real, labels = ds.train_images.float() / 127.5 - 1, ds.train_labels
    unet = build_unet(ds.info.num_classes, ds.info.resolution)
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    opt = torch.optim.AdamW(unet.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps)
    start = time.time()
    for step in range(args.steps):
        idx = torch.randint(len(real), (args.batch,))
        x0, y = real[idx], labels[idx]
        noise = torch.randn_like(x0)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (args.batch,))
        pred = unet(scheduler.add_noise(x0, noise, t), t, class_labels=y).sample
        loss = F.mse_loss(pred, noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 500 == 0 or step == args.steps - 1:
            print(f"step {step}: loss {loss.item():.4f} ({time.time() - start:.0f} s)", flush=True)
    out = HERE / "weights" / args.dataset
    unet.save_pretrained(out)
    scheduler.save_pretrained(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
