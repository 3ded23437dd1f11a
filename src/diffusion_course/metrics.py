"""Distances between sets of samples, always read next to their real-vs-real floor.

Every estimate from finite samples is biased upwards: two independent draws of the *same*
distribution are not at distance 0. So each metric here comes with `floor(...)`, the
distance between two fresh real samples of the same size; a model is judged by its ratio
to that floor, never by the raw number.

- `sliced_wasserstein`: average 1-D Wasserstein-2 distance over random projections (any dimension).
- `mmd_rbf`: maximum mean discrepancy with a sum of Gaussian kernels (biased V-statistic, ≥ 0).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


def _check_sets(a: Tensor, b: Tensor) -> None:
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must be (n, d) tensors with the same d, got {tuple(a.shape)} and {tuple(b.shape)}")


def sliced_wasserstein(a: Tensor, b: Tensor, n_projections: int = 512, seed: int = 0) -> float:
    """Sliced Wasserstein-2 distance between point sets a (n, d) and b (n, d) of equal size."""
    _check_sets(a, b)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"a and b must hold the same number of points, got {a.shape[0]} and {b.shape[0]}")
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(a.shape[1], n_projections, generator=g, dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=0, keepdim=True)
    pa = (a.double().cpu() @ dirs).sort(dim=0).values
    pb = (b.double().cpu() @ dirs).sort(dim=0).values
    return float((pa - pb).pow(2).mean().sqrt())


def mmd_rbf(a: Tensor, b: Tensor, bandwidths=(0.1, 0.3, 1.0)) -> float:
    """MMD² with a sum of Gaussian kernels exp(−|x−y|²/(2h²)), biased estimate (Gretton et al. 2012)."""
    _check_sets(a, b)
    a, b = a.double().cpu(), b.double().cpu()

    def k(x, y):
        d2 = torch.cdist(x, y).pow(2)
        return sum(torch.exp(-d2 / (2 * h**2)) for h in bandwidths)

    return float(k(a, a).mean() + k(b, b).mean() - 2 * k(a, b).mean())


def floor(metric: Callable[[Tensor, Tensor], float], sample_real: Callable[[int, int], Tensor], n: int,
          seeds=(1001, 1002)) -> float:
    """The metric between two independent real samples of size n: the best a perfect model can score."""
    return metric(sample_real(n, seeds[0]), sample_real(n, seeds[1]))
