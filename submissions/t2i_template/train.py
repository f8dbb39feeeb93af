"""Train the miniature text-to-image pipeline on a prepared dataset (run from the harness checkout).

    python submissions/t2i_template/train.py --dataset digits

For real entries this step does not exist: SDXL-Turbo comes pre-trained (README.md). Here a tiny
Stable Diffusion (tiny_pipeline.py) learns digits so the template runs offline on the CPU:
first the VAE as an autoencoder, then the text-conditioned UNet on its latents, prompted with
--prompt filled with the class names (the prompts generate.py must then use).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]  # tiny_pipeline, and the harness (evaluator)

import tiny_pipeline  # noqa: E402
from evaluator.data import load_dataset  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="digits")
    p.add_argument("--prompt", default="a handwritten digit {name}")
    p.add_argument("--vae-steps", type=int, default=800)
    p.add_argument("--unet-steps", type=int, default=2500)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    from diffusers import DDPMScheduler

    ds = load_dataset(args.dataset, HERE.parents[1] / "datasets", need_train=True)
    real, labels = ds.train_images.float() / 127.5 - 1, ds.train_labels
    pipe = tiny_pipeline.build(ds.info.resolution)
    vae, unet, text_encoder, tokenizer = pipe.vae, pipe.unet, pipe.text_encoder, pipe.tokenizer
    start = time.time()

    opt = torch.optim.Adam(vae.parameters(), lr=1e-3)
    for step in range(args.vae_steps):
        x = real[torch.randint(len(real), (args.batch,))]
        posterior = vae.encode(x).latent_dist
        loss = F.mse_loss(vae.decode(posterior.sample()).sample, x) + 1e-5 * posterior.kl().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 200 == 0:
            print(f"vae {step}: loss {loss.item():.4f} ({time.time() - start:.0f} s)", flush=True)
    vae.eval().requires_grad_(False)
    with torch.no_grad():
        posterior = vae.encode(real).latent_dist
        mean, std = posterior.mean, posterior.std
    vae.register_to_config(scaling_factor=float(1 / mean.std()))

    text_encoder.eval().requires_grad_(False)
    prompts = [args.prompt.format(name=name.replace("_", " ")) for name in ds.classes]
    with torch.no_grad():
        ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                        return_tensors="pt").input_ids
        context = text_encoder(ids)[0]
    noise_schedule = DDPMScheduler.from_config(pipe.scheduler.config)
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-3)
    for step in range(args.unet_steps):
        idx = torch.randint(len(real), (args.batch,))
        z0 = (mean[idx] + std[idx] * torch.randn_like(mean[idx])) * vae.config.scaling_factor
        noise = torch.randn_like(z0)
        t = torch.randint(0, noise_schedule.config.num_train_timesteps, (args.batch,))
        pred = unet(noise_schedule.add_noise(z0, noise, t), t, encoder_hidden_states=context[labels[idx]]).sample
        loss = F.mse_loss(pred, noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 500 == 0 or step == args.unet_steps - 1:
            print(f"unet {step}: loss {loss.item():.4f} ({time.time() - start:.0f} s)", flush=True)
    out = HERE / "weights" / args.dataset
    pipe.save_pretrained(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
