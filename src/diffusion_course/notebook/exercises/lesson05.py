"""Lesson 05's exercises: a Heun step on the probability-flow ODE, and trailing timestep spacing."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ...core.analytic import GaussianMixtureDenoiser
from .checking import exercise


def _heun_cases():
    mix = GaussianMixtureDenoiser(torch.tensor([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.0]]), 0.4)
    g = torch.Generator().manual_seed(3)
    for sigma, sigma_next in ((10.0, 3.0), (1.0, 0.5), (0.3, 0.05)):
        x = torch.randn(8, 2, generator=g, dtype=torch.float64) * math.sqrt(4 + sigma**2)
        yield x, sigma, sigma_next, mix


def _heun_slope_at_start(x: Tensor, sigma: float, sigma_next: float, denoise) -> Tensor:
    d = (x - denoise(x, sigma)) / sigma
    d_next = (x - denoise(x, sigma_next)) / sigma_next  # evaluated at the start x, not at the Euler prediction
    return x + (sigma_next - sigma) * (d + d_next) / 2


@exercise("05", _heun_cases, wrong=_heun_slope_at_start)
def heun_step(x: Tensor, sigma: float, sigma_next: float, denoise) -> Tensor:
    """Euler step to σ' with d = (x − D(x, σ))/σ, then redo it from x with the mean of d and the slope at its end."""
    d = (x - denoise(x, sigma)) / sigma  # 1. slope at the start
    x_euler = x + (sigma_next - sigma) * d  # 2. Euler step
    d_next = (x_euler - denoise(x_euler, sigma_next)) / sigma_next  # 3. slope at the end of the Euler step
    return x + (sigma_next - sigma) * (d + d_next) / 2  # 4. trapezoid: the mean of the two slopes


def _spacing_cases():
    yield from ((1000, 10), (1000, 4), (1000, 7), (50, 3))


def _leading(T: int, n: int) -> list[int]:
    return [k * (T // n) for k in reversed(range(n))]  # "leading": ends at t = 0, never visits t = T − 1


@exercise("05", _spacing_cases, wrong=_leading)
def trailing_timesteps(T: int, n: int) -> list[int]:
    """Trailing: t_k = round(T − k·T/n) − 1 for k = 0 … n−1, so the first step is t = T − 1, the noisiest."""
    return [round(T - k * T / n) - 1 for k in range(n)]
