"""The diffusion training objective (Ho et al. 2020, Algorithm 1) and a small loop for 2-D data.

The image training loop (AdamW, warm-up, EMA, checkpoints) builds on `diffusion_loss`
in `train.py`.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .denoisers import target_for
from .runtime import progress, randint, randn
from .schedules import NoiseSchedule

WEIGHTINGS = ("none", "min_snr")


def diffusion_loss(net: nn.Module, x0: Tensor, schedule: NoiseSchedule, *, generator: torch.Generator | None = None,
                   prediction: str = "eps", cond=None, weighting: str = "none", min_snr_gamma: float = 5.0,
                   t_max: int | None = None) -> Tensor:
    """One Monte-Carlo estimate of the denoising loss for a batch x0.

    1. draw t ~ U{0..T-1} and ε ~ N(0, I) per example; 2. noise in closed form;
    3. regress the network's output onto the target (ε, x₀ or v); 4. optionally weight by
    min-SNR-γ (Hang et al. 2023), expressed for whichever target is used.
    t_max: draw t from U{0..t_max-1} only: a network trained this way is an expert for the low noise levels
    (eDiff-I's expert denoisers, SDXL's refiner); None = every timestep.
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if t_max is not None and not 1 <= t_max <= schedule.T:
        raise ValueError(f"t_max must lie in [1, T={schedule.T}], got {t_max}")
    t = randint(schedule.T if t_max is None else t_max, (x0.shape[0],), generator, device=x0.device)  # 1
    noise = randn(x0.shape, generator, device=x0.device, dtype=x0.dtype)
    x_t = schedule.q_sample(x0, t, noise)  # 2
    alpha_bar = schedule.alpha_bar(t).to(device=x0.device, dtype=x0.dtype).reshape(-1, *[1] * (x0.ndim - 1))
    target = target_for(prediction, x0, noise, alpha_bar)
    per_item = (net(x_t, t.float(), cond) - target).pow(2).flatten(1).mean(1)  # 3
    if weighting == "min_snr":  # 4. weight relative to an x₀ loss: min(SNR, γ) / (SNR for ε, SNR+1 for v, 1 for x₀)
        snr = schedule.snr(t).to(device=x0.device, dtype=x0.dtype)
        base = {"eps": snr, "v": snr + 1, "x0": torch.ones_like(snr)}[prediction]
        per_item = per_item * snr.clamp(max=min_snr_gamma) / base
    return per_item.mean()


def train_toy(net: nn.Module, data: Tensor, schedule: NoiseSchedule, *, steps: int = 3000, batch_size: int = 256,
              lr: float = 2e-3, seed: int = 0, show_progress: bool = True) -> list[float]:
    """Train `net` on the points `data` with Adam and a cosine learning-rate decay; returns the loss per step."""
    if steps <= 0 or batch_size <= 0:
        raise ValueError(f"steps and batch_size must be positive, got {steps} and {batch_size}")
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=lr * 0.05)
    losses = []
    net.train()
    for _ in progress(range(steps), desc="training", disable=not show_progress):
        batch = data[randint(data.shape[0], (batch_size,), g)].to(next(net.parameters()).device)
        loss = diffusion_loss(net, batch, schedule, generator=g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    net.eval()
    return losses
