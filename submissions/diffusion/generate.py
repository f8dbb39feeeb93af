"""Class-conditional diffusion sampled with DPM-Solver++ (generative track entrypoint).

In the spirit of the rank-1 entry: a pixel-space class-conditional diffusion model and a fast
multistep solver, "as many images as possible" within the clock (up to --ipc per class).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from benchmark.genkit import ShardWriter, parse_args, time_left


def options(p):
    p.add_argument("--ipc", type=int, default=100, help="images per class to aim for")
    p.add_argument("--steps", type=int, default=20, help="DPM-Solver steps")
    p.add_argument("--batch-rounds", type=int, default=20, help="class-balanced rounds per batch")


def main() -> None:
    args = parse_args(extra=options)
    from diffusers import DPMSolverMultistepScheduler, UNet2DModel

    weights = Path(__file__).parent / "weights" / args.dataset
    if not (weights / "config.json").is_file():
        sys.exit(f"no weights for {args.dataset} ({weights}); train them with: python train.py --dataset {args.dataset}")
    unet = UNet2DModel.from_pretrained(weights).to(args.device).eval()
    scheduler = DPMSolverMultistepScheduler.from_pretrained(weights)
    if unet.config.sample_size != args.resolution or unet.config.num_class_embeds != args.num_classes:
        sys.exit(f"{weights} was trained for {unet.config.num_class_embeds} classes at {unet.config.sample_size} px")
    rng = torch.Generator(device="cpu").manual_seed(args.seed)
    writer = ShardWriter(args.out, args.resolution)
    done, batch_seconds = 0, 0.0
    with torch.no_grad():
        while done < args.ipc and time_left() > batch_seconds * 1.5 + 2:
            started = time.time()
            rounds = min(args.batch_rounds, args.ipc - done)
            y = torch.arange(args.num_classes).repeat(rounds).to(args.device)
            x = torch.randn(len(y), 3, args.resolution, args.resolution, generator=rng).to(args.device)
            scheduler.set_timesteps(args.steps)
            for t in scheduler.timesteps:
                x = scheduler.step(unet(x, t, class_labels=y).sample, t, x).prev_sample
            images = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()
            writer.write(images, y.cpu())
            done += rounds
            batch_seconds = time.time() - started
    print(f"wrote {writer.images_written} images ({done} per class) in {writer.index} shards")


if __name__ == "__main__":
    main()
