"""mel: class-conditional GAN with truncation and mixed resolutions (generative track entrypoint).

    python generate.py --dataset digits --num-classes 10 --resolution 8 --classes classes.json \
        --out out/ --ipc 50 --truncation 0.8 --low-res-fraction 0.67

Generates class-balanced rounds (one image per class each) until --ipc is reached or the clock
runs short; a fraction of each round comes from the cheaper half-resolution head, upscaled.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from benchmark.genkit import ShardWriter, parse_args, time_left

import model


def options(p):
    p.add_argument("--ipc", type=int, default=50, help="images per class to aim for")
    p.add_argument("--truncation", type=float, default=0.8, help="psi in (0, 1]; thesis: 0.6 at IPC 10, 0.8 at IPC 37")
    p.add_argument("--low-res-fraction", type=float, default=0.67, help="share of images from the half-resolution head")
    p.add_argument("--batch-rounds", type=int, default=10, help="class-balanced rounds per shard")
    p.add_argument("--safety-seconds", type=float, default=3.0, help="stop when less time than this is left")


def main() -> None:
    args = parse_args(extra=options)
    weights = Path(__file__).parent / "weights" / f"{args.dataset}.safetensors"
    if not weights.is_file():
        sys.exit(f"no weights for {args.dataset} ({weights}); train them with: python train.py --dataset {args.dataset}")
    torch.manual_seed(args.seed)
    g = model.load(weights).to(args.device)
    if (g.config["num_classes"], g.config["resolution"]) != (args.num_classes, args.resolution):
        sys.exit(f"{weights} was trained for {g.config['num_classes']} classes at {g.config['resolution']} px")
    rng = torch.Generator().manual_seed(args.seed)
    writer = ShardWriter(args.out, args.resolution)
    done = 0
    with torch.no_grad():
        while done < args.ipc and time_left() > args.safety_seconds:
            rounds = min(args.batch_rounds, args.ipc - done)
            y = torch.arange(args.num_classes).repeat(rounds)
            z = model.sample_latents(len(y), g.z_dim, args.truncation, rng)
            low = torch.rand(len(y), generator=rng) < args.low_res_fraction
            images = torch.empty(len(y), 3, args.resolution, args.resolution, dtype=torch.uint8)
            for mask, low_res in ((low, True), (~low, False)):
                if mask.any():
                    x = g(z[mask].to(args.device), y[mask].to(args.device), low_res=low_res).cpu()
                    images[mask] = model.to_uint8(x, args.resolution)
            writer.write(images, y)
            done += rounds
    print(f"wrote {writer.images_written} images ({done} per class) in {writer.index} shards")


if __name__ == "__main__":
    main()
