"""Samplers: one short function per algorithm, all with the same signature.

    sampler(denoiser, x, sigmas, *, cond=None, generator=None, **options) -> iterator of Step

`x` starts at the first noise level in the VE view (x = x₀ + σ ε; see `prior_sample`),
`sigmas` is a decreasing list of noise levels, normally ending at 0 (see `spacing.py`), and
`denoiser(x, σ, cond)` returns x̂₀ (see `denoisers.py`). Each sampler walks the list pair by
pair and yields a `Step` after every move, so notebooks can plot and animate trajectories;
`sample(...)` runs one to the end and returns the final x. Randomness comes only from
`generator`; device and dtype follow `x`.
"""
from __future__ import annotations

import math
from typing import Callable, Iterator, NamedTuple

import torch
from torch import Tensor

from ..runtime import randn
from .schedules import alpha_bar_of


class Step(NamedTuple):
    """State after step i: x at noise level `sigma_next`, and the x̂₀ the model predicted at `sigma`."""

    i: int
    sigma: float
    sigma_next: float
    x: Tensor
    x0: Tensor
    nfe: int  # network evaluations so far


def randn_like(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard normal noise shaped like x, from `generator` (drawn on its device, moved to x's)."""
    return randn(x.shape, generator, device=x.device, dtype=x.dtype)


def prior_sample(shape, sigma_max: float, generator: torch.Generator | None = None, device=None,
                 dtype=torch.float32) -> Tensor:
    """x ~ N(0, (1 + σ_max²) I): pure noise x_T ~ N(0, I) of the VP process, seen in the VE view."""
    return randn(shape, generator, device=device, dtype=dtype) * math.sqrt(1 + sigma_max**2)


def _pairs(sigmas) -> list[tuple[float, float]]:
    s = [float(v) for v in torch.as_tensor(sigmas, dtype=torch.float64).flatten()]
    if len(s) < 2:
        raise ValueError(f"sigmas needs at least two noise levels (start and end), got {len(s)}")
    if not all(math.isfinite(v) for v in s) or not all(a > b for a, b in zip(s, s[1:])) or s[-1] < 0:
        raise ValueError(f"sigmas must be finite, strictly decreasing and end at a level >= 0, got {s[:4]}...{s[-2:]}")
    return list(zip(s[:-1], s[1:]))


@torch.no_grad()
def ddpm(denoiser, x, sigmas, *, cond=None, generator=None) -> Iterator[Step]:
    """DDPM ancestral sampling (Ho et al. 2020, Algorithm 2), on any decreasing σ list."""
    for i, (s, s_next) in enumerate(_pairs(sigmas)):
        x0 = denoiser(x, s, cond)  # 1. predict the clean sample
        ab, ab_next = alpha_bar_of(s), alpha_bar_of(s_next)
        beta = 1 - ab / ab_next  # 2. the effective β of this (possibly multi-step) jump
        x_t = x * math.sqrt(ab)  # 3. posterior q(x_next | x_t, x̂₀) (eqs. 6-7), in the VP view
        mean = (math.sqrt(ab_next) * beta * x0 + math.sqrt(1 - beta) * (1 - ab_next) * x_t) / (1 - ab)
        std = math.sqrt(beta * (1 - ab_next) / (1 - ab))
        if s_next > 0:  # 4. add noise, except on the final step to σ = 0
            mean = mean + std * randn_like(x, generator)
        x = mean / math.sqrt(ab_next)  # back to the VE view
        yield Step(i, s, s_next, x, x0, i + 1)


@torch.no_grad()
def ddim(denoiser, x, sigmas, *, cond=None, generator=None, eta: float = 0.0) -> Iterator[Step]:
    """DDIM (Song et al. 2021, eq. 12); η=0 is deterministic, η=1 matches DDPM's ancestral step."""
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta}")
    for i, (s, s_next) in enumerate(_pairs(sigmas)):
        x0 = denoiser(x, s, cond)  # 1. predict x̂₀, and the ε̂ it implies
        eps = (x - x0) / s
        ab, ab_next = alpha_bar_of(s), alpha_bar_of(s_next)
        var = eta**2 * (1 - ab_next) / (1 - ab) * (1 - ab / ab_next)  # 2. σ_t(η)² of eq. 16
        x = x0 + math.sqrt(max(1 - ab_next - var, 0.0) / ab_next) * eps  # 3. "direction pointing to x_t"
        if var > 0:  # 4. fresh noise (VP std √var, divided by √ᾱ_next for the VE view)
            x = x + math.sqrt(var / ab_next) * randn_like(x, generator)
        yield Step(i, s, s_next, x, x0, i + 1)


def _churn(x, s, n_steps, churn, s_tmin, s_tmax, s_noise, generator):
    """Karras et al. (2022) Algorithm 2, lines 4-6: raise σ to σ̂ = σ(1+γ) by adding fresh noise."""
    gamma = min(churn / n_steps, math.sqrt(2) - 1) if s_tmin <= s <= s_tmax else 0.0
    s_hat = s * (1 + gamma)
    if gamma > 0:
        x = x + math.sqrt(s_hat**2 - s**2) * s_noise * randn_like(x, generator)
    return x, s_hat


@torch.no_grad()
def euler(denoiser, x, sigmas, *, cond=None, generator=None, churn=0.0, s_tmin=0.0, s_tmax=math.inf, s_noise=1.0):
    """Euler steps of the probability-flow ODE dx/dσ = (x − D(x, σ))/σ (Karras et al. 2022, Alg. 2 without the 2nd order)."""
    pairs = _pairs(sigmas)
    for i, (s, s_next) in enumerate(pairs):
        x, s_hat = _churn(x, s, len(pairs), churn, s_tmin, s_tmax, s_noise, generator)  # 1. optional churn
        x0 = denoiser(x, s_hat, cond)  # 2. denoise
        d = (x - x0) / s_hat  # 3. ODE slope
        x = x + (s_next - s_hat) * d  # 4. Euler step
        yield Step(i, s, s_next, x, x0, i + 1)


@torch.no_grad()
def heun(denoiser, x, sigmas, *, cond=None, generator=None, churn=0.0, s_tmin=0.0, s_tmax=math.inf, s_noise=1.0,
         max_ratio: float = 100.0):
    """Heun's 2nd-order method (Karras et al. 2022, Algorithm 1/2): Euler, then a trapezoid correction.

    A step whose σ shrinks by more than `max_ratio` (σ/σ_next) stays first order (Euler). The trapezoid's slope at
    σ_next is (x − x̂₀)/σ_next, so across such a step any change of the model's x̂₀ between the two levels is
    multiplied by about σ/σ_next — with the cosine schedule and trailing spacing the first step goes from σ ≈ 2·10⁴
    to σ ≈ 3 and the "correction" destroys the sample (notebook 05 measures it). Karras et al. start at σ = 80, so
    the guard never fires there; `max_ratio=math.inf` gives diffusers' `HeunDiscreteScheduler` exactly.
    """
    if not max_ratio > 1:
        raise ValueError(f"max_ratio must be > 1, got {max_ratio}")
    pairs, nfe = _pairs(sigmas), 0
    for i, (s, s_next) in enumerate(pairs):
        x, s_hat = _churn(x, s, len(pairs), churn, s_tmin, s_tmax, s_noise, generator)  # 1. optional churn
        x0 = denoiser(x, s_hat, cond)
        d = (x - x0) / s_hat  # 2. slope at the start
        x_euler = x + (s_next - s_hat) * d
        nfe += 1
        if s_next > 0 and s_hat / s_next <= max_ratio:  # 3. slope at the end; average the two (not on the last step)
            d_next = (x_euler - denoiser(x_euler, s_next, cond)) / s_next
            x_euler = x + (s_next - s_hat) * (d + d_next) / 2
            nfe += 1
        x = x_euler
        yield Step(i, s, s_next, x, x0, nfe)


@torch.no_grad()
def dpmpp_2m(denoiser, x, sigmas, *, cond=None, generator=None) -> Iterator[Step]:
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2): multistep 2nd order in λ = −log σ, data prediction."""
    x0_prev, h_prev = None, None
    for i, (s, s_next) in enumerate(_pairs(sigmas)):
        x0 = denoiser(x, s, cond)  # 1. data prediction at this level
        if s_next == 0:  # 2. the final step to σ=0 is the first-order one: x̂₀ itself
            x = x0
        else:
            h = math.log(s / s_next)  # 3. step size in λ
            # 4. linear extrapolation d = x̂₀ + (x̂₀ − x̂₀_prev)·h/(2h_prev), one fused op (lerp with weight < 0)
            d = x0 if x0_prev is None else torch.lerp(x0, x0_prev, -h / (2 * h_prev))
            x = torch.add(x * (s_next / s), d, alpha=-math.expm1(-h))  # 5. exact integration of the linear part
            h_prev = h
        x0_prev = x0
        yield Step(i, s, s_next, x, x0, i + 1)


SAMPLERS: dict[str, Callable[..., Iterator[Step]]] = {
    "ddpm": ddpm,
    "ddim": ddim,
    "euler": euler,
    "heun": heun,
    "dpmpp_2m": dpmpp_2m,
}


def get_sampler(name: str) -> Callable[..., Iterator[Step]]:
    """Look a sampler up by name (one of `SAMPLERS`)."""
    if name not in SAMPLERS:
        raise ValueError(f"sampler must be one of {tuple(SAMPLERS)}, got {name!r}")
    return SAMPLERS[name]


@torch.no_grad()
def sample(sampler, denoiser, x, sigmas, **options) -> Tensor:
    """Run `sampler` (a function or its name) to the end and return the final x."""
    fn = get_sampler(sampler) if isinstance(sampler, str) else sampler
    for step in fn(denoiser, x, sigmas, **options):
        x = step.x
    return x
