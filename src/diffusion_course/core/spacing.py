"""Step selection as data: decreasing lists of noise levels σ for the samplers, ending at 0.

A sampler with n steps walks n+1 levels σ_0 > σ_1 > ... > σ_n = 0. How the n levels are
picked from the T training timesteps is a separate choice from the sampler itself:

- "leading"  t = (n−1)k, ..., k, 0 with k = T//n   (DDPM/DDIM paper code; never visits t=T−1)
- "trailing" t = T−1, T−1−T/n, ...  (rounded)       (Lin et al. 2024: starts at the noisiest step)
- "linspace" t = linspace(T−1, 0, n), fractional, σ interpolated linearly in t (diffusers' Euler)
- "karras"   σ evenly spaced in σ^(1/ρ) from σ_max to σ_min (Karras et al. 2022, eq. 5, ρ=7)

These are diffusers' DDIM/Euler conventions. diffusers' DPM-Solver schedulers take n+1 points and drop t=0
instead, so their "leading" is k·(n, ..., 1) with k = T//(n+1): `leading_dpm_timesteps` gives that list.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .schedules import NoiseSchedule

SPACINGS = ("leading", "trailing", "linspace", "karras")


def timesteps_for(schedule: NoiseSchedule, n: int, spacing: str = "trailing") -> Tensor:
    """The n (decreasing, possibly fractional) training timesteps a sampler visits."""
    _check_n(n, schedule)
    T = schedule.T
    if spacing == "leading":
        t = np.arange(n)[::-1] * (T // n)
    elif spacing == "trailing":
        # [:n]: for some n (61, 103, ... of T=1000) float round-off gives arange an extra point
        # near 0, i.e. t = -1 (diffusers 0.42.1 keeps it and takes n+1 steps)
        t = np.round(np.arange(T, 0, -T / n))[:n] - 1
    elif spacing == "linspace":
        t = np.linspace(0, T - 1, n)[::-1]
    elif spacing == "karras":
        return schedule.t_from_sigma(karras_sigmas(schedule, n)[:-1])
    else:
        raise ValueError(f"spacing must be one of {SPACINGS}, got {spacing!r}")
    return torch.from_numpy(t.astype(np.float64).copy())


def leading_dpm_timesteps(schedule: NoiseSchedule, n: int) -> Tensor:
    """diffusers' DPM-Solver "leading" timesteps: k·(n, ..., 1) with k = T//(n+1) (n+1 points, t = 0 dropped)."""
    _check_n(n, schedule)
    return torch.arange(n, 0, -1, dtype=torch.float64) * (schedule.T // (n + 1))


def sigma_at(schedule: NoiseSchedule, t) -> Tensor:
    """σ at (possibly fractional) timesteps t, interpolating σ linearly in t between integer steps."""
    t = torch.as_tensor(t, dtype=torch.float64)
    if bool(((t < 0) | (t > schedule.T - 1)).any()):
        raise ValueError(f"timesteps must lie in [0, {schedule.T - 1}]")
    lo = t.floor().long().clamp(max=schedule.T - 2) if schedule.T > 1 else t.floor().long()
    w = t - lo
    sig = schedule.sigmas
    return sig[lo] * (1 - w) + sig[(lo + 1).clamp(max=schedule.T - 1)] * w


def karras_sigmas(schedule: NoiseSchedule, n: int, rho: float = 7.0,
                  sigma_min: float | None = None, sigma_max: float | None = None) -> Tensor:
    """Karras et al. (2022) eq. 5: n levels evenly spaced in σ^(1/ρ), then a final 0."""
    _check_n(n, schedule)
    lo = schedule.sigma_min if sigma_min is None else sigma_min
    hi = schedule.sigma_max if sigma_max is None else sigma_max
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    sig = (hi ** (1 / rho) + ramp * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
    return torch.cat([sig, sig.new_zeros(1)])


def make_sigmas(schedule: NoiseSchedule, n: int, spacing: str = "trailing") -> Tensor:
    """n+1 decreasing noise levels for an n-step sampler: σ at the chosen timesteps, then 0."""
    if spacing == "karras":
        return karras_sigmas(schedule, n)
    sig = sigma_at(schedule, timesteps_for(schedule, n, spacing))
    return torch.cat([sig, sig.new_zeros(1)])


def _check_n(n, schedule: NoiseSchedule) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= schedule.T:
        raise ValueError(f"number of steps n must be an int in [1, {schedule.T}], got {n!r}")
