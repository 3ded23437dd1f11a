"""The model contract: turn a network that predicts ε, x₀ or v into a denoiser D(x, σ) → x̂₀.

Networks are trained in the VP view: `net(x_t, t, cond) -> prediction`, with
x_t = √ᾱ_t x₀ + √(1−ᾱ_t) ε and a (possibly fractional) timestep t.
Samplers work in the VE view x = x₀ + σ ε (x = x_t / √ᾱ_t, σ = √((1−ᾱ)/ᾱ)) and only ever
call `denoiser(x, sigma, cond)`. This wrapper is the single place where the two meet,
so samplers never know what a network predicts.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .schedules import NoiseSchedule

PREDICTIONS = ("eps", "x0", "v")


def target_for(prediction: str, x0: Tensor, noise: Tensor, alpha_bar: Tensor) -> Tensor:
    """The regression target for a training example: ε, x₀, or v = √ᾱ ε − √(1−ᾱ) x₀ (Salimans & Ho 2022)."""
    if prediction == "eps":
        return noise
    if prediction == "x0":
        return x0
    if prediction == "v":
        return alpha_bar.sqrt() * noise - (1 - alpha_bar).sqrt() * x0
    raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")


class Denoiser:
    """D(x, σ, cond) → x̂₀ for x = x₀ + σ ε, built from `net(x_t, t, cond)` and its schedule.

    prediction: what `net` outputs ('eps', 'x0' or 'v').
    clip: if set, clamp x̂₀ to [-clip, clip] (pixel data lives in [-1, 1]; leave None for latents).
    """

    def __init__(self, net: Callable, schedule: NoiseSchedule, prediction: str = "eps", clip: float | None = None):
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
        self.net, self.schedule, self.prediction, self.clip = net, schedule, prediction, clip

    def __call__(self, x: Tensor, sigma, cond=None) -> Tensor:
        sigma = _per_item_sigma(sigma, x)  # float64, on the CPU: one entry per item, or one shared by all
        shape = (-1,) + (1,) * (x.ndim - 1)
        alpha_bar = self.schedule.alpha_bar_from_sigma(sigma)  # coefficients in float64, then cast

        def coef(v: Tensor) -> Tensor:
            return v.to(device=x.device, dtype=x.dtype).reshape(shape)

        x_t = x * coef(alpha_bar.sqrt())  # 1. VE → VP: the input the network was trained on
        t_dtype = torch.promote_types(x.dtype, torch.float32)  # float64 inputs keep a float64 t
        t = self.schedule.t_from_sigma(sigma).to(device=x.device, dtype=t_dtype)  # 2. σ → timestep
        out = self.net(x_t, t.expand(x.shape[0]), cond)  # 3. the network's prediction
        if self.prediction == "eps":  # 4. prediction → x̂₀
            x0 = torch.addcmul(x, out, coef(-sigma))
        elif self.prediction == "x0":
            x0 = out
        else:  # x̂₀ = √ᾱ x_t − √(1−ᾱ) v
            x0 = torch.addcmul(x_t * coef(alpha_bar.sqrt()), out, coef(-(1 - alpha_bar).sqrt()))
        if self.clip is None:
            return x0
        return x0.clamp_(-self.clip, self.clip) if x0 is not out else x0.clamp(-self.clip, self.clip)


def _per_item_sigma(sigma, x: Tensor) -> Tensor:
    """σ as a float64 tensor with one entry per batch item of x, or a single entry shared by all of them."""
    sigma = torch.as_tensor(sigma, dtype=torch.float64, device="cpu") if not torch.is_tensor(sigma) else sigma
    sigma = sigma.detach().to("cpu", torch.float64)
    if sigma.ndim == 0:
        sigma = sigma.reshape(1)  # shared by the whole batch: coefficients broadcast, t is expanded
    if sigma.shape not in {(1,), (x.shape[0],)}:
        raise ValueError(f"sigma must be a scalar or have shape ({x.shape[0]},), got {tuple(sigma.shape)}")
    if bool((sigma <= 0).any()):
        raise ValueError("sigma must be > 0 when calling a denoiser (σ = 0 is already clean data)")
    return sigma
