"""Lesson 02's exercises: the training loss and the reverse step on 2-D data."""
from __future__ import annotations

import torch
from torch import Tensor

from ...core.schedules import NoiseSchedule
from .checking import exercise


class _FixedNet(torch.nn.Module):
    """A fixed, non-trivial stand-in for ε_θ(x_t, t) so loss checks need no training."""

    def forward(self, x, t):
        return torch.tanh(x) * (t[:, None] / 100.0)


def _loss_cases():
    g = torch.Generator().manual_seed(7)
    ab = NoiseSchedule.linear(100).alpha_bars.float()
    for _ in range(3):
        x0, noise = torch.randn(8, 2, generator=g), torch.randn(8, 2, generator=g)
        yield _FixedNet(), x0, torch.randint(0, 100, (8,), generator=g), noise, ab


@exercise("02", _loss_cases)
def training_loss(net, x0: Tensor, t: Tensor, noise: Tensor, alpha_bars: Tensor) -> Tensor:
    """Algorithm 1's loss ‖ε − ε_θ(√ᾱ_t x_0 + √(1−ᾱ_t) ε, t)‖², averaged over the batch."""
    ab = alpha_bars[t].reshape(-1, *[1] * (x0.ndim - 1)).to(x0.dtype)
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    return (net(x_t, t.float()) - noise).pow(2).mean()


def _reverse_cases():
    g = torch.Generator().manual_seed(7)
    betas = NoiseSchedule.linear(100).betas.float()
    for t in (99, 40, 1, 0):
        yield torch.randn(5, 2, generator=g), torch.randn(5, 2, generator=g), t, torch.randn(5, 2, generator=g), betas


@exercise("02", _reverse_cases)
def reverse_step(eps_hat: Tensor, x_t: Tensor, t: int, z: Tensor, betas: Tensor) -> Tensor:
    """Algorithm 2, line 4: x_{t−1} = (x_t − β_t/√(1−ᾱ_t) ε̂)/√α_t + σ_t z, with σ_t² = β̃_t."""
    alphas = 1 - betas
    alpha_bars = torch.cumprod(alphas, 0)
    ab_prev = alpha_bars[t - 1] if t > 0 else torch.ones((), dtype=alpha_bars.dtype)
    mean = (x_t - betas[t] / (1 - alpha_bars[t]).sqrt() * eps_hat) / alphas[t].sqrt()
    var = betas[t] * (1 - ab_prev) / (1 - alpha_bars[t])
    return mean + var.sqrt() * z if t > 0 else mean
