"""VAE downsampling factor 2, 4 or 8: what each keeps, what each costs.

    python -m benchmarks.vae_factors [--steps 1500]

Trains one VAE per factor for the same number of steps (the CPU recipe's other settings: batch 64), then
measures reconstructions of 1,000 test images (PSNR, evaluator accuracy, FD / floor) and the latent
size a diffusion U-Net would work on. Writes "VAE downsampling factor" in docs/benchmarks.md (notebook 08).
"""
from __future__ import annotations

import argparse
import time

import torch

import diffusion_course as dc
from diffusion_course.networks.latent import compute_scaling_factor, with_scaling_factor
from diffusion_course.recipes.configs import VAE_BATCH, VAE_KL_WEIGHT, VAE_LR
from diffusion_course.recipes.latent import reconstruction_report
from diffusion_course.training.vae import train_vae

from .record import record

FACTORS = {2: (16, 32), 4: (16, 32, 64), 8: (16, 32, 64, 64)}  # factor 4 = the shipped VAE_CONFIG widths


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=1500)
    args = p.parse_args()
    images = dc.make_shapes(50_000, split="train", seed=0).images
    lines = ["| factor | latent | numbers per image | PSNR (dB) | shape acc | colour acc | size acc | position acc | "
             "FD / floor | train img/s |", "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for factor, channels in FACTORS.items():
        torch.manual_seed(0)
        vae = dc.VAE(dc.VAEConfig(block_out_channels=channels))
        start = time.perf_counter()
        train_vae(vae, images, steps=args.steps, batch_size=VAE_BATCH, lr=VAE_LR, kl_weight=VAE_KL_WEIGHT,
                     generator=torch.Generator().manual_seed(0), show_progress=False)
        ips = args.steps * VAE_BATCH / (time.perf_counter() - start)
        vae.config = with_scaling_factor(vae.config, compute_scaling_factor(vae, images[:5000]))
        r = reconstruction_report(vae)
        side = 32 // factor
        acc = r["accuracy"]
        lines.append(f"| {factor} | {side}×{side}×4 | {side * side * 4} | {r['psnr_db']:.1f} | {acc['shape']:.1%} | "
                     f"{acc['colour']:.1%} | {acc['size']:.1%} | {acc['position']:.1%} | {r['fd_ratio']:.2f} | {ips:.0f} |")
        print(lines[-1], flush=True)
    body = (f"One VAE per downsampling factor, each trained {args.steps} steps (batch {VAE_BATCH}, lr {VAE_LR}, KL weight "
            f"{VAE_KL_WEIGHT}), widths as listed in `benchmarks/vae_factors.py`; reconstructions of 1,000 test images. "
            f"3,072 numbers per 32×32×3 image.\n\n" + "\n".join(lines))
    record("vae_factors", "VAE downsampling factor", f"python -m benchmarks.vae_factors --steps {args.steps}", body)


if __name__ == "__main__":
    main()
