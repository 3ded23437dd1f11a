"""Lesson 08's exercises: the VAE's KL term and the PSNR of its reconstructions."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .checking import exercise


def _posterior_cases():
    g = torch.Generator().manual_seed(8)
    for shape in ((2, 4, 8, 8), (3, 4, 2, 2), (1, 3)):
        mu = 2.0 * torch.randn(shape, generator=g)
        std = torch.exp(torch.randn(shape, generator=g) - 2.0)  # small σ, as a trained VAE encoder's are
        yield mu, std


def _kl_log_std(mu: Tensor, std: Tensor) -> Tensor:
    """A plausible mistake: log σ where the formula has log σ²."""
    return 0.5 * (mu**2 + std**2 - 1 - torch.log(std)).flatten(1).sum(1)


@exercise("08", _posterior_cases, wrong=_kl_log_std)
def kl_per_image(mu: Tensor, std: Tensor) -> Tensor:
    """KL(N(μ, σ²) ‖ N(0, 1)) = ½ Σ (μ² + σ² − 1 − log σ²), with log σ² = 2 log σ, summed over all but the batch dim."""
    return 0.5 * (mu**2 + std**2 - 1 - 2 * torch.log(std)).flatten(1).sum(1)


def _image_pair_cases():
    g = torch.Generator().manual_seed(8)
    for noise in (0.02, 0.1, 0.5):
        a = torch.rand(4, 3, 8, 8, generator=g) * 2 - 1
        yield a, (a + noise * torch.randn(a.shape, generator=g)).clamp(-1, 1)


def _psnr_peak_one(a: Tensor, b: Tensor) -> float:
    """A plausible mistake: the peak of images in [0, 1] (1), not the range of images in [-1, 1] (2)."""
    return 10 * math.log10(1 / float((a.double() - b.double()).pow(2).mean()))


@exercise("08", _image_pair_cases, wrong=_psnr_peak_one)
def psnr_db(a: Tensor, b: Tensor) -> float:
    """PSNR = 10·log10(range² / MSE) with range 2 for images in [-1, 1], the MSE over every value of the batch."""
    mse = float((a.double() - b.double()).pow(2).mean())
    return 10 * math.log10(4 / mse)
