"""Text-to-image generation with post-generation augmentation (generative track entrypoint).

In the spirit of the rank-3 entry (SDXL-Turbo: one step, guidance 0, class names as prompts,
fp16, then crops, flips, rotations, brightness/contrast and gamma to multiply the IPC).
Any diffusers text-to-image pipeline saved in a local folder works (AutoPipelineForText2Image);
nothing is fetched from a hub. See README.md for where the SDXL-Turbo weights go.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmark.genkit import ShardWriter, parse_args, time_left

HERE = Path(__file__).resolve().parent
OPS = ("crop", "flip", "rotate", "color", "gamma")


def options(p):
    p.add_argument("--weights", default=None, help="pipeline folder (default: weights/<dataset>, else weights/sdxl-turbo)")
    p.add_argument("--prompt", default="a photo of a {name}", help="prompt template; {name} is the class name")
    p.add_argument("--steps", type=int, default=1, help="inference steps (SDXL-Turbo: 1)")
    p.add_argument("--guidance", type=float, default=0.0, help="guidance scale (SDXL-Turbo: 0)")
    p.add_argument("--size", type=int, default=None, help="generation size in px (default: the pipeline's)")
    p.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default="fp32")
    p.add_argument("--ipc", type=int, default=40, help="images per class to aim for, augmented ones included")
    p.add_argument("--augment", type=int, default=4, help="images kept per generated image (1 = no augmentation)")
    p.add_argument("--ops", default=",".join(OPS), help=f"augmentations, a subset of {','.join(OPS)}")
    p.add_argument("--batch", type=int, default=64, help="prompts per pipeline call")


def weights_folder(args) -> Path:
    candidates = [Path(args.weights)] if args.weights else [HERE / "weights" / args.dataset, HERE / "weights" / "sdxl-turbo"]
    for folder in candidates:
        folder = folder if folder.is_absolute() else HERE / folder
        if (folder / "model_index.json").is_file():
            return folder
    sys.exit(f"no pipeline weights in {', '.join(map(str, candidates))}: put a diffusers text-to-image "
             f"pipeline there (README.md), or train the digits one with train.py")


def augment(x: torch.Tensor, ops: set[str], gen: torch.Generator) -> torch.Tensor:
    """One random variant of each image (float 0-1, N x 3 x R x R)."""
    n, _, r, _ = x.shape
    u = lambda *shape: torch.rand(*shape, generator=gen)  # noqa: E731
    ones, zeros = torch.ones(n), torch.zeros(n)
    scale = 1 - 0.3 * u(n) if "crop" in ops else ones  # keep 70-100 % of the side
    shift = (u(n, 2) * 2 - 1) * (1 - scale).unsqueeze(1)
    angle = (u(n) * 2 - 1) * math.radians(15) if "rotate" in ops else zeros
    flip = torch.where(u(n) < 0.5, -ones, ones) if "flip" in ops else ones
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], 1), torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if "color" in ops:
        x = x * (0.7 + 0.6 * u(n, 1, 1, 1))  # brightness
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * (0.7 + 0.6 * u(n, 1, 1, 1)) + mean  # contrast
    if "gamma" in ops:
        x = x.clamp(0, 1) ** (0.7 + 0.7 * u(n, 1, 1, 1))
    return x.clamp(0, 1)


def main() -> None:
    args = parse_args(extra=options)
    from diffusers import AutoPipelineForText2Image

    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.dtype]
    pipe = AutoPipelineForText2Image.from_pretrained(weights_folder(args), torch_dtype=dtype, local_files_only=True)
    pipe = pipe.to(args.device)
    pipe.set_progress_bar_config(disable=True)
    size = args.size or pipe.unet.config.sample_size * pipe.vae_scale_factor
    ops = set(args.ops.split(",")) if args.ops else set()
    if ops - set(OPS):
        sys.exit(f"--ops: unknown {sorted(ops - set(OPS))}; choose from {','.join(OPS)}")
    prompts = [args.prompt.format(name=name.replace("_", " ")) for name in args.class_names]
    gen_ipc = math.ceil(args.ipc / args.augment)
    writer = ShardWriter(args.out, args.resolution)
    rng = torch.Generator().manual_seed(args.seed)
    queue = [c for _ in range(gen_ipc) for c in range(args.num_classes)]  # class-balanced rounds
    call_seconds = 0.0
    while queue and time_left() > call_seconds * 1.5 + 2:
        started = time.time()
        batch, queue = queue[: args.batch], queue[args.batch:]
        out = pipe(prompt=[prompts[c] for c in batch], num_inference_steps=args.steps, guidance_scale=args.guidance,
                   height=size, width=size, output_type="pt",
                   generator=torch.Generator(args.device).manual_seed(args.seed + writer.index))
        x = F.interpolate(out.images.float().cpu(), size=(args.resolution, args.resolution), mode="bilinear",
                          antialias=True, align_corners=False)
        variants = [x] + [augment(x, ops, rng) for _ in range(args.augment - 1)]
        images = (torch.cat(variants) * 255).round().to(torch.uint8)
        writer.write(images, torch.tensor(batch).repeat(args.augment))
        call_seconds = time.time() - started
    print(f"wrote {writer.images_written} images in {writer.index} shards ({size} px generation)")


if __name__ == "__main__":
    main()
