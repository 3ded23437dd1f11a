"""Lesson 06's exercises: dropping labels in training, and guidance in the paper's convention."""
from __future__ import annotations

import torch
from torch import Tensor

from .checking import exercise


def _drop_cases():
    g = torch.Generator().manual_seed(7)
    for p in (0.15, 0.0, 1.0, 0.5):
        yield torch.randint(0, 8, (32,), generator=g), torch.rand(32, generator=g), p, 8


def _drop_kept_ones(labels: Tensor, u: Tensor, p: float, null_id: int) -> Tensor:
    return torch.where(u < p, labels, torch.full_like(labels, null_id))  # keeps the labels it should drop


@exercise("06", _drop_cases, wrong=_drop_kept_ones)
def drop_labels(labels: Tensor, u: Tensor, p: float, null_id: int) -> Tensor:
    """Where u < p (probability p, u uniform on [0, 1)), the label becomes null_id; elsewhere it stays."""
    return torch.where(u < p, torch.full_like(labels, null_id), labels)


def _cfg_cases():
    g = torch.Generator().manual_seed(7)
    for w in (0.0, 0.5, 2.0):
        yield torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g), w


def _course_convention(eps_cond: Tensor, eps_uncond: Tensor, w: float) -> Tensor:
    return eps_uncond + w * (eps_cond - eps_uncond)  # the course's scale, used as if it were the paper's w


@exercise("06", _cfg_cases, wrong=_course_convention)
def cfg_paper(eps_cond: Tensor, eps_uncond: Tensor, w: float) -> Tensor:
    """Ho & Salimans eq. 6: ε̃ = (1 + w) ε(x, c) − w ε(x, ∅); their w = 0 is the plain conditional model."""
    return (1 + w) * eps_cond - w * eps_uncond
