"""Lesson 04's exercises: the v target, and turning a v prediction back into x̂₀ and ε̂."""
from __future__ import annotations

import torch
from torch import Tensor

from .checking import exercise


def _v_cases():
    g = torch.Generator().manual_seed(7)
    ab = torch.tensor([0.999, 0.5, 1e-3]).reshape(3, 1, 1, 1)
    yield torch.randn(3, 3, 4, 4, generator=g), torch.randn(3, 3, 4, 4, generator=g), ab


def _v_swapped(x0: Tensor, noise: Tensor, alpha_bar: Tensor) -> Tensor:
    return alpha_bar.sqrt() * x0 - (1 - alpha_bar).sqrt() * noise  # x₀ and ε in each other's place


@exercise("04", _v_cases, wrong=_v_swapped)
def v_target(x0: Tensor, noise: Tensor, alpha_bar: Tensor) -> Tensor:
    """v = √ᾱ_t ε − √(1−ᾱ_t) x_0 (Salimans & Ho 2022), ᾱ_t broadcast over the image dimensions."""
    return alpha_bar.sqrt() * noise - (1 - alpha_bar).sqrt() * x0


def _from_v_cases():
    g = torch.Generator().manual_seed(11)
    for ab in (torch.tensor([0.999, 0.5, 1e-3]), torch.tensor([0.9, 0.1, 0.3])):
        ab = ab.reshape(3, 1, 1, 1)
        x0, noise = torch.randn(3, 3, 4, 4, generator=g), torch.randn(3, 3, 4, 4, generator=g)
        x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        yield x_t, v_target(x0, noise, ab), ab


def _from_v_swapped(x_t: Tensor, v: Tensor, alpha_bar: Tensor) -> tuple[Tensor, Tensor]:
    a, s = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
    return s * x_t - a * v, a * x_t + s * v  # the coefficients of x̂₀ and ε̂ swapped


@exercise("04", _from_v_cases, wrong=_from_v_swapped)
def x0_eps_from_v(x_t: Tensor, v: Tensor, alpha_bar: Tensor) -> tuple[Tensor, Tensor]:
    """x̂₀ = √ᾱ x_t − √(1−ᾱ) v and ε̂ = √(1−ᾱ) x_t + √ᾱ v: (x_t, v) is (x₀, ε) rotated; rotate back."""
    a, s = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
    return a * x_t - s * v, s * x_t + a * v
