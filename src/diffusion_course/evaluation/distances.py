"""Distances between sets of samples, always read next to their real-vs-real floor.

Every estimate from finite samples is biased upwards: two independent draws of the *same*
distribution are not at distance 0. So each metric here comes with `real_data_floor(...)`, the
distance between two fresh real samples of the same size; a model is judged by its ratio
to that floor, never by the raw number.

- `sliced_wasserstein`: average 1-D Wasserstein-2 distance over random projections (any dimension).
- `mmd_rbf`: maximum mean discrepancy with a sum of Gaussian kernels (biased V-statistic, ≥ 0).
- `frechet_distance`: distance between Gaussians fitted to two feature sets (Heusel et al. 2017, the "FID" formula;
  the course computes it in its own evaluator's feature space, see `reports.py`).
- `precision_recall`: k-nearest-neighbour manifold precision and recall (Kynkäänniemi et al. 2019): precision is the
  share of generated samples that fall inside the real data's manifold (fidelity), recall the share of real samples
  inside the generated manifold (diversity / coverage).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor


def _check_sets(a: Tensor, b: Tensor) -> None:
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must be (n, d) tensors with the same d, got {tuple(a.shape)} and {tuple(b.shape)}")
    for name, x in (("a", a), ("b", b)):  # a NaN would crash the eigenvalue routine, or silently spoil the distance
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"{name} holds {int((~torch.isfinite(x)).sum())} NaN or infinite values: distances need "
                             "finite features (were the samples themselves NaN?)")


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


def real_data_floor(metric: Callable[[Tensor, Tensor], float], sample_real: Callable[[int, int], Tensor], n: int,
          seeds=(1001, 1002)) -> float:
    """The metric between two independent real samples of size n: the best a perfect model can score."""
    return metric(sample_real(n, seeds[0]), sample_real(n, seeds[1]))


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """‖μ_a − μ_b‖² + tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^½) between Gaussians fitted to features a (n, d) and b (m, d)."""
    _check_sets(a, b)
    if min(a.shape[0], b.shape[0]) < 2:
        raise ValueError("frechet_distance needs at least 2 samples in each set")
    a, b = a.double().cpu(), b.double().cpu()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T).reshape(a.shape[1], -1), torch.cov(b.T).reshape(b.shape[1], -1)
    # tr((Σ_a Σ_b)^½) = Σ √λ_i over the eigenvalues of Σ_a Σ_b, which are real and ≥ 0 up to rounding
    eig = torch.linalg.eigvals(cov_a @ cov_b).real.clamp(min=0)
    return float((mu_a - mu_b).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * eig.sqrt().sum())


def _knn_radii(x: Tensor, k: int) -> Tensor:
    """Distance from each point to its k-th nearest neighbour within the same set."""
    d = torch.cdist(x, x)
    return d.kthvalue(k + 1, dim=1).values  # +1: the nearest "neighbour" is the point itself


def in_manifold(real: Tensor, fake: Tensor, k: int = 3) -> Tensor:
    """For each row of `fake`, whether it lies inside the union of `real`'s k-NN balls (Kynkäänniemi et al. 2019)."""
    _check_sets(real, fake)
    if min(real.shape[0], fake.shape[0]) <= k:
        raise ValueError(f"precision_recall needs more than k={k} samples in each set")
    real, fake = real.double().cpu(), fake.double().cpu()
    return (torch.cdist(fake, real) <= _knn_radii(real, k)[None, :]).any(dim=1)


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> tuple[float, float]:
    """(precision, recall) of `fake` against `real` feature sets, with k-NN balls as manifold estimates."""
    precision = in_manifold(real, fake, k).double().mean()
    recall = in_manifold(fake, real, k).double().mean()
    return float(precision), float(recall)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB for images in [-1, 1] (peak-to-peak 2)."""
    mse = float((a.double() - b.double()).pow(2).mean())
    return 10 * math.log10(4 / mse) if mse > 0 else math.inf


def sharpness(images: Tensor) -> float:
    """Mean absolute 4-neighbour Laplacian of images (B, C, H, W), per pixel and channel: blur lowers it, pixel noise
    raises it. The evaluator is trained to ignore slight blur, so a Fréchet distance in its features cannot tell a soft
    image from a sharp one; report this beside it wherever blurry and sharp outputs are compared."""
    if images.ndim != 4:
        raise ValueError(f"images must be a (B, C, H, W) batch, got shape {tuple(images.shape)}")
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float32,
                          device=images.device).expand(images.shape[1], 1, 3, 3)
    return torch.nn.functional.conv2d(images.float(), kernel, groups=images.shape[1]).abs().mean().item()
