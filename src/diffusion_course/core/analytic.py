"""Exact denoisers that need no training: E[x₀ | x] for Gaussian, Gaussian-mixture and point-set data.

For data x₀ ~ p and x = x₀ + σ ε (the VE view the samplers use), the denoiser that minimises
the training loss is the posterior mean D*(x, σ) = E[x₀ | x]. For these data it has a closed form
(all covariances diagonal; products and squares are elementwise):

- Gaussian N(μ, s²):                 D(x, σ) = μ + s²/(s² + σ²) · (x − μ)
- mixture Σ_k w_k N(μ_k, s_k²):      D(x, σ) = Σ_k r_k(x) · [μ_k + s_k²/(s_k² + σ²) · (x − μ_k)],
                                     r_k(x) = softmax_k( log w_k + log N(x; μ_k, s_k² + σ²) )
- points {p_k} (uniform, s_k = 0):   D(x, σ) = Σ_k softmax_k(−|x − p_k|² / (2σ²)) · p_k

so samplers can be tested against the true data distribution, and visualised, in seconds.
Each denoiser is called like every other, `D(x, σ, cond=None) → x̂₀`, and `.as_net(schedule, prediction)`
turns it into a network `net(x_t, t, cond)` predicting ε, x₀ or v that `Denoiser` can wrap, e.g.
ε̂ = (x − D(x, σ_t)) / σ_t with x = x_t / √ᾱ_t = x_t · √(1 + σ_t²).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ..runtime import randn
from .denoisers import PREDICTIONS, _per_item_sigma, target_for
from .schedules import NoiseSchedule


class GaussianMixtureDenoiser:
    """The exact denoiser of data drawn from Σ_k w_k N(μ_k, diag(s_k²)); s_k = 0 gives a point set.

    means: (K, *data_shape) component means μ_k.
    stds: component standard deviations s_k, broadcastable to `means` (a float, (K,1,..) or per element).
    weights: (K,) mixture weights (normalised here; default uniform).
    """

    def __init__(self, means, stds=0.0, weights=None):
        self.means = torch.as_tensor(means, dtype=torch.float64).detach().cpu()
        if self.means.ndim < 2 or self.means.shape[0] == 0:
            raise ValueError(f"means must have shape (K, *data_shape) with K >= 1, got {tuple(self.means.shape)}")
        K = self.means.shape[0]
        self.stds = torch.as_tensor(stds, dtype=torch.float64).detach().cpu().broadcast_to(self.means.shape)
        if not bool((self.stds >= 0).all()):
            raise ValueError("stds must be >= 0")
        w = torch.ones(K, dtype=torch.float64) if weights is None else torch.as_tensor(weights, dtype=torch.float64)
        if w.shape != (K,) or not bool((w >= 0).all()) or not float(w.sum()) > 0:
            raise ValueError(f"weights must be {K} non-negative numbers with a positive sum, got {w.tolist()}")
        self.weights = w / w.sum()

    @property
    def data_shape(self) -> tuple[int, ...]:
        return tuple(self.means.shape[1:])

    def __call__(self, x: Tensor, sigma, cond=None) -> Tensor:
        """x̂₀ = E[x₀ | x₀ + σ ε = x] for x of shape (B, *data_shape) and σ > 0 (a scalar or one per item)."""
        if tuple(x.shape[1:]) != self.data_shape:
            raise ValueError(f"x must have shape (batch, *{self.data_shape}), got {tuple(x.shape)}")
        B, K = x.shape[0], self.means.shape[0]
        sig = _per_item_sigma(sigma, x).to(x).reshape(-1, 1, *[1] * len(self.data_shape))  # (B or 1, 1, ...)
        mu, s2 = self.means.to(x), self.stds.to(x) ** 2
        var = s2 + sig**2  # (B, K, ...): variance of x given component k
        diff = x[:, None] - mu  # 1. distance to every component
        log_p = -0.5 * (diff**2 / var + var.log()).flatten(2).sum(-1)  # 2. log N(x; μ_k, s_k² + σ²) + const
        log_r = log_p + self.weights.to(x).log()  # 3. posterior over components, a softmax over k
        r = (log_r - log_r.logsumexp(1, keepdim=True)).exp()  # (torch.softmax: ~200x slower on small CPU input)
        x0_k = mu + s2 / var * diff  # 4. each component's own posterior mean
        return (r.reshape(B, K, *[1] * len(self.data_shape)) * x0_k).sum(1)

    def sample(self, n: int, generator: torch.Generator | None = None, dtype=torch.float64) -> Tensor:
        """n draws x₀ from the data distribution itself (the target a sampler should reproduce)."""
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = randn((n, *self.data_shape), generator, dtype=torch.float64)
        return (self.means[k] + self.stds[k] * z).to(dtype)

    def as_net(self, schedule: NoiseSchedule, prediction: str = "eps") -> Callable:
        """This denoiser as a network `net(x_t, t, cond)` on `schedule` predicting ε, x₀ or v (for `Denoiser`).

        With x = x_t/√ᾱ_t and x̂₀ = D(x, σ_t): ε̂ = (x − x̂₀)/σ_t and v̂ = √ᾱ_t ε̂ − √(1−ᾱ_t) x̂₀.
        A fractional t maps to σ by interpolating log σ linearly between integer steps (the inverse of
        `NoiseSchedule.t_from_sigma`), so `Denoiser(net, schedule, prediction)` gives this denoiser back.
        """
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")

        def net(x_t: Tensor, t, cond=None) -> Tensor:
            sigma = _sigma_from_t(schedule, t, x_t.shape[0])
            s = sigma.to(x_t).reshape(-1, *[1] * (x_t.ndim - 1))
            alpha_bar = 1 / (1 + s**2)
            x = x_t / alpha_bar.sqrt()  # VP → VE
            x0 = self(x, sigma, cond)
            return target_for(prediction, x0, (x - x0) / s, alpha_bar)

        return net


def gaussian_denoiser(mean, std) -> GaussianMixtureDenoiser:
    """Exact denoiser of Gaussian data N(mean, std²) (std a float or per element): D = μ + s²/(s²+σ²)(x − μ)."""
    mean = torch.as_tensor(mean, dtype=torch.float64)
    return GaussianMixtureDenoiser(mean[None], torch.as_tensor(std, dtype=torch.float64).broadcast_to(mean.shape)[None])


def point_set_denoiser(points) -> GaussianMixtureDenoiser:
    """Exact denoiser of data spread uniformly over the rows of `points` (shape (K, *data_shape))."""
    return GaussianMixtureDenoiser(points, 0.0)


def _sigma_from_t(schedule: NoiseSchedule, t, batch: int) -> Tensor:
    """σ at (possibly fractional) timesteps t, log σ linear between integer steps; one value per batch item."""
    t = torch.as_tensor(t).detach().to("cpu", torch.float64)
    t = t.expand(batch) if t.ndim == 0 else t
    if t.shape != (batch,) or bool(((t < 0) | (t > schedule.T - 1)).any()):
        raise ValueError(f"t must be a scalar or have shape ({batch},), with values in [0, {schedule.T - 1}]")
    lo = t.floor().long().clamp(0, max(schedule.T - 2, 0))
    w = t - lo
    log_s = schedule.sigmas.log()
    return (log_s[lo] * (1 - w) + log_s[(lo + 1).clamp(max=schedule.T - 1)] * w).exp()
