"""Recipes for latent diffusion: the course's VAE and its mini Stable Diffusion (notebook 08).

    python -m diffusion_course.train vae      # VAE, 32×32×3 → 8×8×4, scale factor measured on data
    python -m diffusion_course.train latent   # text-conditional U-Net on VAE latents + its own text encoder

Same conventions as `recipes.py`: fixed seeds, quality measured at the end, safetensors + JSON.
"""
from __future__ import annotations

import math
import time
from dataclasses import replace

import torch

from .checkpoints import load_checkpoint
from .evaluation import evaluate_samples
from .generation import generate
from .latent import LatentAdapter, compute_scaling_factor, encode_latents, with_scaling_factor
from .prompts import caption_batches
from .runtime import seed_everything
from .schedules import NoiseSchedule
from .shapes import make_shapes
from .text import TextConditionedModel, TextConditioner
from .train import TrainConfig, train_diffusion
from .unet import UNetConfig, UNet, count_parameters
from .vae import LDM_KL_WEIGHT, VAE, VAEConfig, train_vae

VAE_CONFIG = VAEConfig(block_out_channels=(32, 64, 64), latent_channels=4)  # f = 4: 32×32×3 → 8×8×4
VAE_STEPS, VAE_BATCH, VAE_LR, VAE_KL_WEIGHT = 3000, 64, 1e-3, LDM_KL_WEIGHT
LATENT_SCHEDULE = ("cosine", 1000)
LATENT_UNET = UNetConfig(in_channels=4, out_channels=4, image_size=8, channels=(64, 128), attention_levels=(0, 1),
                         context_dim=64)
LATENT_TRAIN = TrainConfig(steps=6000, batch_size=64, lr=1e-3, warmup=200, prediction="v", weighting="min_snr",
                           cond_drop=0.15)
LATENT_GUIDANCE = 3.0
LATENT_PHRASE_DROP = 0.25  # as the pixel text model: each optional phrase left out of 1 caption in 4
TRAIN_IMAGES = 50_000


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB for images in [-1, 1] (peak-to-peak 2)."""
    mse = float((a.double() - b.double()).pow(2).mean())
    return 10 * math.log10(4 / mse) if mse > 0 else math.inf


@torch.no_grad()
def reconstruction_report(vae: VAE, n: int = 1000, device=None) -> dict:
    """PSNR, FD / floor and evaluator accuracy of reconstructions of n test images."""
    test = make_shapes(n, split="test", seed=0)
    adapter = LatentAdapter(vae)
    recon = torch.cat([adapter.to_image(adapter.to_latent(c.to(device))).cpu() for c in test.images.split(250)])
    evaluator, _ = load_checkpoint("evaluator", device=device)
    targets = {k: test.attrs[k] for k in ("shape", "colour", "size", "position")}
    rep = evaluate_samples(recon, evaluator, targets=targets, split="test")
    return {"psnr_db": psnr(recon, test.images), "fd_ratio": rep.fd_ratio, "fd": rep.fd, "fd_floor": rep.fd_floor,
            "accuracy": rep.accuracy, "recognised": rep.recognised}


def train_vae_recipe(device, steps: int | None = None, seed: int = 0, config: VAEConfig = VAE_CONFIG):
    """Train the VAE, then measure its latent scale factor and reconstruction quality."""
    g = seed_everything(seed)
    images = make_shapes(TRAIN_IMAGES, split="train", seed=0).images
    vae = VAE(config).to(device)
    t0 = time.perf_counter()
    history = train_vae(vae, images, steps=steps or VAE_STEPS, batch_size=VAE_BATCH, lr=VAE_LR,
                        kl_weight=VAE_KL_WEIGHT, generator=g)
    seconds = time.perf_counter() - t0
    scale = compute_scaling_factor(vae, images[:5000].to(device))
    vae.config = with_scaling_factor(vae.config, scale)
    report = reconstruction_report(vae, device=device)
    print(f"VAE: scale factor {scale:.4f}, {report}")
    meta = {"steps": steps or VAE_STEPS, "batch_size": VAE_BATCH, "lr": VAE_LR, "kl_weight": VAE_KL_WEIGHT,
            "seconds": round(seconds, 1), "images_per_second": round((steps or VAE_STEPS) * VAE_BATCH / seconds, 1),
            "parameters": count_parameters(vae), "final_reconstruction_mse": sum(history["reconstruction"][-100:]) / len(history["reconstruction"][-100:]),
            "scaling_factor_from": "5000 training images, posterior means", "reconstruction": report}
    return {"vae": vae}, meta


def train_latent(device, steps: int | None = None, seed: int = 0):
    """The mini Stable Diffusion: a text-conditional U-Net on the shipped VAE's latents, with its own text encoder."""
    seed_everything(seed)
    cfg = replace(LATENT_TRAIN, steps=steps or LATENT_TRAIN.steps, seed=seed)
    vae, _ = load_checkpoint("vae", device=device)
    adapter = LatentAdapter(vae)
    data = make_shapes(TRAIN_IMAGES, split="train", seed=0)
    t0 = time.perf_counter()
    latents = (encode_latents(vae, data.images) * vae.config.scaling_factor).cpu()
    encode_seconds = time.perf_counter() - t0
    conditioner = TextConditioner()
    model = TextConditionedModel(UNet(LATENT_UNET), conditioner).to(device)
    schedule = NoiseSchedule.from_kind(*LATENT_SCHEDULE)
    t0 = time.perf_counter()
    batches = caption_batches(latents, data.attrs, conditioner, cfg.batch_size, LATENT_PHRASE_DROP)
    result = train_diffusion(model, schedule, batches, cfg, drop_condition=model.drop)
    seconds = time.perf_counter() - t0
    ema = result.ema
    test = make_shapes(1000, split="test", seed=0)
    cond = ema.conditioner.tokenize(test.captions, device="cpu")
    null = lambda b, dev: ema.conditioner.tokenize([""] * b, dev)  # noqa: E731
    samples = generate(ema, schedule, 1000, seed=1234, device=device, prediction=cfg.prediction, cond=cond,
                       guidance=LATENT_GUIDANCE,
                       null_cond=null, shape=adapter.latent_shape(), clip=None, decode=adapter.to_image)
    targets = {k: test.attrs[k] for k in ("shape", "colour", "size", "position")}
    report = evaluate_samples(samples, load_checkpoint("evaluator", device=device)[0], targets=targets)
    print(result.summary(), report, sep="\n")
    meta = {"train": cfg.to_dict(), "schedule": list(LATENT_SCHEDULE), "train_images": TRAIN_IMAGES,
            "parameters": count_parameters(model), "seconds": round(seconds, 1),
            "encode_seconds": round(encode_seconds, 1), "images_per_second": round(result.images_per_second, 2),
            "final_loss": sum(result.losses[-200:]) / len(result.losses[-200:]), "vae": "vae",
            "quality": {"samples": 1000, "guidance": LATENT_GUIDANCE, "fd_ratio": report.fd_ratio,
                        "recognised": report.recognised, "precision": report.precision, "recall": report.recall,
                        "accuracy": report.accuracy}}
    return {"latent_unet": ema.net, "latent_text_encoder": ema.conditioner.encoder}, meta
