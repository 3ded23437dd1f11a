"""Lesson 04's exercises: training on images."""
from __future__ import annotations

import torch
from torch import Tensor

from .checking import exercise


def _v_cases():
    g = torch.Generator().manual_seed(7)
    ab = torch.tensor([0.999, 0.5, 1e-3]).reshape(3, 1, 1, 1)
    yield torch.randn(3, 3, 4, 4, generator=g), torch.randn(3, 3, 4, 4, generator=g), ab


@exercise("04", _v_cases)
def v_target(x0: Tensor, noise: Tensor, alpha_bar: Tensor) -> Tensor:
    """v = √ᾱ_t ε − √(1−ᾱ_t) x_0 (Salimans & Ho 2022), ᾱ_t broadcast over the image dimensions."""
    return alpha_bar.sqrt() * noise - (1 - alpha_bar).sqrt() * x0
