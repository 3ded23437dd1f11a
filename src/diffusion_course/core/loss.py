"""The diffusion training objective (Ho et al. 2020, Algorithm 1): noise a batch, regress the network onto its target.

Every training loop of the course calls `diffusion_loss`: the 2-D loop (`training.toy`) and the image loop
(`training.loop`).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..runtime import randint, randn
from .denoisers import target_for
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
