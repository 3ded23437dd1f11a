"""Lesson 01's exercises: the forward process."""
from __future__ import annotations

import torch
from torch import Tensor

from ...core.schedules import NoiseSchedule
from .checking import exercise


def _q_sample_cases():
    g = torch.Generator().manual_seed(7)
    ab = NoiseSchedule.linear(100).alpha_bars.float()
    for t in (0, 10, 99):
        yield torch.randn(4, 3, generator=g), t, torch.randn(4, 3, generator=g), ab


@exercise("01", _q_sample_cases)
def q_sample(x0: Tensor, t: int, noise: Tensor, alpha_bars: Tensor) -> Tensor:
    """The closed-form jump x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε."""
    ab = alpha_bars[t]
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def _alpha_bar_cases():
    yield (NoiseSchedule.linear(100).alpha_bars,)
    yield (NoiseSchedule.cosine(50).alpha_bars,)
    yield (NoiseSchedule.scaled_linear(1000).alpha_bars[::97],)


def _noise_scale_not_sigma(alpha_bars: Tensor) -> Tensor:
    return (1 - alpha_bars).sqrt()  # the VP noise scale √(1−ᾱ), not the σ of x_t/√ᾱ = x_0 + σ ε


@exercise("01", _alpha_bar_cases, wrong=_noise_scale_not_sigma)
def sigma_from_alpha_bar(alpha_bars: Tensor) -> Tensor:
    """σ_t = √((1−ᾱ_t)/ᾱ_t): divide x_t = √ᾱ x_0 + √(1−ᾱ) ε by √ᾱ and read off the noise's scale."""
    return ((1 - alpha_bars) / alpha_bars).sqrt()


def _dpm_solver_half(alpha_bars: Tensor) -> Tensor:
    return 0.5 * torch.log(alpha_bars / (1 - alpha_bars))  # DPM-Solver's λ, half of ours


@exercise("01", _alpha_bar_cases, wrong=_dpm_solver_half)
def log_snr(alpha_bars: Tensor) -> Tensor:
    """λ_t = log(ᾱ_t / (1−ᾱ_t)), the natural log of signal variance over noise variance (not half of it)."""
    return torch.log(alpha_bars / (1 - alpha_bars))
