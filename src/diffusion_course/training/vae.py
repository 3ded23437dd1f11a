"""Training the VAE (lesson 08): its loss, its training loop, and fine-tuning its decoder under a frozen encoder.

Loss: mean squared error (a Gaussian likelihood, so loss = a negative ELBO up to constants) plus a
weighted KL to N(0, I). Stable Diffusion's VAE used L1 + LPIPS + a GAN instead; LPIPS needs
downloaded weights and the GAN a second network, so the course keeps the plain VAE objective.

Decoder fine-tuning: a latent diffusion model learns the distribution of its VAE's latents, so retraining the whole VAE
would move the latent space and invalidate the U-Net. `finetune_decoder` freezes the encoder, which keeps every latent
(and the scale factor measured on them) as it was: the fine-tuned decoder is a drop-in replacement under an already
trained latent U-Net, as Stable Diffusion's `sd-vae-ft-mse` decoder was. With the encoder fixed the KL term is a
constant, so the objective is the reconstruction term alone; the posterior q(z|x) is computed once, and each step draws
z ~ q(z|x) and decodes it, so a step costs a decoder pass only.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..networks.vae import VAE, DiagonalGaussian
from ..networks.vae_decoder import DECODER_MODULES
from ..runtime import progress, randint
from .loop import warmup_cosine
from .optimiser import update
from .state import RunState

LDM_KL_WEIGHT = 1e-6  # the KL weight of Stable Diffusion's autoencoder configs (with `vae_loss`'s normalisation)


class VAELoss(NamedTuple):
    total: Tensor  # reconstruction + kl_weight · kl / (values per image): what is minimised
    reconstruction: Tensor  # mean squared error per pixel and channel
    kl: Tensor  # KL(q(z|x) ‖ N(0, I)) in nats per image, averaged over the batch


def vae_loss(x: Tensor, recon: Tensor, posterior: DiagonalGaussian, kl_weight: float = LDM_KL_WEIGHT) -> VAELoss:
    """MSE reconstruction plus weighted KL; the KL is divided by the values per image, so `kl_weight` means what
    it means in LDM's configs (there both terms are summed per image)."""
    if recon.shape != x.shape:
        raise ValueError(f"recon must have the shape of x {tuple(x.shape)}, got {tuple(recon.shape)}")
    if kl_weight < 0:
        raise ValueError(f"kl_weight must be >= 0, got {kl_weight}")
    reconstruction = F.mse_loss(recon, x)
    kl = posterior.kl().mean()
    return VAELoss(reconstruction + kl_weight * kl / x[0].numel(), reconstruction, kl)


def train_vae(vae: VAE, images: Tensor, *, steps: int = 2000, batch_size: int = 64, lr: float = 1e-3,
              kl_weight: float = LDM_KL_WEIGHT, generator: torch.Generator | None = None,
              show_progress: bool = True, state: RunState | None = None) -> dict[str, list[float]]:
    """Train with Adam and cosine decay on random batches of `images`; returns each VAELoss field per step.
    state: save a resumable state every `state.every` steps, or resume from it (`RunState`)."""
    if steps <= 0 or batch_size <= 0 or lr <= 0:
        raise ValueError(f"steps, batch_size and lr must be positive, got {steps}, {batch_size} and {lr}")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    device = next(vae.parameters()).device
    opt = torch.optim.Adam(vae.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=lr * 0.05)
    history: dict[str, list[float]] = {name: [] for name in VAELoss._fields}
    parts = ({"vae": vae}, {"opt": opt}, {"data": g, "global": torch.default_generator}, {"sched": sched})
    start, extra = state.restore(*parts) if state else (0, {})
    for name in history:
        history[name].extend(extra.get("history", {}).get(name, []))
    pending: list[Tensor] = []  # each step's losses, still on the device: read back in groups, not once per step
    vae.train()
    for step in progress(range(start, steps), desc="training VAE", disable=not show_progress, initial=start,
                         total=steps):
        x = images[randint(images.shape[0], (batch_size,), g, device=images.device)].to(device)
        recon, posterior = vae(x, generator=g)
        loss = vae_loss(x, recon, posterior, kl_weight)
        update(opt, loss.total, sched, step=step)
        pending.append(torch.stack([v.detach().float() for v in loss]))
        due = bool(state and state.every and (step + 1) % state.every == 0)
        if len(pending) == 50 or step == steps - 1 or due:
            for row in torch.stack(pending).cpu().tolist():
                for name, value in zip(VAELoss._fields, row):
                    history[name].append(value)
            pending.clear()
        if due:
            state.save(step + 1, *parts, extra={"history": history, "steps": steps})
    vae.eval()
    return history


FINAL_LR_FRAC = 0.05  # the fine-tuning's learning rate ends at this fraction of its peak (warm-up, then cosine)


@torch.no_grad()
def posterior_moments(vae: VAE, images: Tensor, batch_size: int = 500) -> Tensor:
    """q(z|x) of `images` as (N, 2·latent_channels, h, w) moments (means, then log-variances), on vae's device."""
    device, out = next(vae.parameters()).device, []
    for chunk in images.split(batch_size):
        posterior = vae.encode(chunk.to(device))
        out.append(torch.cat([posterior.mean, posterior.logvar], dim=1))
    return torch.cat(out)


def finetune_decoder(vae: VAE, images: Tensor, *, steps: int, batch_size: int = 128, lr: float = 1e-3,
                     warmup: int = 200, generator: torch.Generator | None = None, on_eval=None, eval_every: int = 0,
                     show_progress: bool = True, state: RunState | None = None) -> list[float]:
    """Train `vae`'s decoder (and post_quant_conv) in place on the reconstruction error of z ~ q(z|x), the encoder
    frozen; Adam, the learning rate rising linearly over `warmup` steps, then a cosine decay to 5% of `lr`. The warm-up
    matters when fine-tuning: Adam's first steps move every weight by about `lr` whatever its gradient, and two steps at
    1e-3 without it took the shipped decoder from 32.2 to 16.6 dB. Calls `on_eval(step)` every `eval_every` steps and
    after the last one (eval_every = 0: never). Returns the loss (mean squared error per value) of every step.
    state: save a resumable state every `state.every` steps, or resume from it (`RunState`)."""
    if steps <= 0 or batch_size <= 0 or lr <= 0:
        raise ValueError(f"steps, batch_size and lr must be positive, got {steps}, {batch_size} and {lr}")
    if not 0 <= warmup < steps:
        raise ValueError(f"warmup must be in [0, steps={steps}), got {warmup}")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    device = next(vae.parameters()).device
    vae.eval()
    moments, images = posterior_moments(vae, images), images.to(device)
    params = [p for name in DECODER_MODULES for p in getattr(vae, name).parameters()]
    flags = [p.requires_grad for p in vae.parameters()]  # the caller's, restored at the end
    vae.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    try:
        return _decoder_steps(vae, images, moments, params, steps, batch_size, lr, warmup, g, on_eval, eval_every,
                              show_progress, state)
    finally:
        vae.eval()
        for p, flag in zip(vae.parameters(), flags):
            p.requires_grad_(flag)


def _decoder_steps(vae, images, moments, params, steps, batch_size, lr, warmup, g, on_eval, eval_every,
                   show_progress, state) -> list[float]:
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: warmup_cosine(i, steps, warmup, FINAL_LR_FRAC))
    parts = ({"vae": vae}, {"opt": opt}, {"data": g, "global": torch.default_generator}, {"sched": sched})
    start, extra = state.restore(*parts) if state else (0, {})
    done: list[float] = list(extra.get("losses", []))  # losses of the steps before a resume
    losses: list[Tensor] = []
    for step in progress(range(start + 1, steps + 1), desc="fine-tuning the decoder", disable=not show_progress,
                         initial=start, total=steps):
        idx = randint(images.shape[0], (batch_size,), g, device=images.device)
        z = DiagonalGaussian.from_moments(moments[idx]).sample(g)
        vae.decoder.train()
        loss = F.mse_loss(vae.decode(z), images[idx])
        update(opt, loss, sched, step=step)
        losses.append(loss.detach())
        if on_eval is not None and eval_every and (step % eval_every == 0 or step == steps):
            vae.eval()
            on_eval(step)
        if state and state.every and step % state.every == 0:
            state.save(step, *parts, extra={"losses": done + torch.stack(losses).float().cpu().tolist()})
    return done + (torch.stack(losses).float().cpu().tolist() if losses else [])
