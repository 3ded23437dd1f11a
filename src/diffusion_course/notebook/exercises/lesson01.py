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
