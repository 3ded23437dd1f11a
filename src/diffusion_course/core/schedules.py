"""Noise schedules: the one object that owns every noise-level quantity of a diffusion.

We use the discrete-time, variance-preserving (VP) process of DDPM (Ho et al. 2020)
with 0-indexed timesteps t = 0, 1, ..., T-1 (as diffusers does: ᾱ at t=0 already
holds one step of noise). Samplers walk a list of *noise levels* σ instead of integer
timesteps; this module converts between all the views.

Notation (papers disagree on letters; this is what the course uses everywhere):

=============  ======================  =================================  ===========================
symbol         meaning                 code (`NoiseSchedule`)             diffusers name
=============  ======================  =================================  ===========================
T              number of timesteps     ``T``                              ``num_train_timesteps``
β_t            per-step noise variance ``betas[t]``                       ``betas``
α_t            1 − β_t                 ``alphas[t]``                      ``alphas``
ᾱ_t            ∏_{s≤t} α_s             ``alpha_bars[t]``                  ``alphas_cumprod``
√ᾱ_t           signal scale            ``signal_scale(t)``                ``sqrt_alphas_cumprod``
√(1−ᾱ_t)       noise scale             ``noise_scale(t)``                 ``sqrt_one_minus_alphas_cumprod``
σ_t            √((1−ᾱ_t)/ᾱ_t), the     ``sigma(t)``, ``sigmas``           ``sigmas`` (Euler/Heun/DPM)
               Karras / VE noise level
SNR_t          ᾱ_t / (1−ᾱ_t) = 1/σ_t²  ``snr(t)``                         —
λ_t            log SNR_t               ``log_snr(t)``                     DPM-Solver's ``lambda_t``
               (DPM-Solver uses λ/2)
=============  ======================  =================================  ===========================

Forward process: q(x_t | x_0) = N(√ᾱ_t x_0, (1−ᾱ_t) I), i.e. x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε.
Equivalently x_t / √ᾱ_t = x_0 + σ_t ε: the variance-exploding (VE) view that Karras et al.
(2022) and our σ-based samplers use.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

SCHEDULE_KINDS = ("linear", "cosine", "scaled_linear")


class NoiseSchedule:
    """A discrete VP noise schedule built from β_1..β_T; every other quantity derives from it."""

    def __init__(self, betas: Tensor, kind: str = "custom"):
        betas = torch.as_tensor(betas, dtype=torch.float64).detach().clone()
        if betas.ndim != 1 or betas.numel() == 0:
            raise ValueError(f"betas must be a non-empty 1-D tensor, got shape {tuple(betas.shape)}")
        if not bool(((betas > 0) & (betas < 1)).all()):
            bad = betas[(betas <= 0) | (betas >= 1)][0].item()
            raise ValueError(f"every beta must lie strictly between 0 and 1, found {bad!r}")
        self.kind = kind
        self.betas = betas
        self.alphas = 1.0 - betas
        self.alpha_bars = torch.cumprod(self.alphas, dim=0)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def linear(cls, T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> "NoiseSchedule":
        """DDPM's schedule (Ho et al. 2020, §4): β evenly spaced from `beta_start` to `beta_end`."""
        _check_T(T)
        _check_beta_range(beta_start, beta_end)
        return cls(torch.linspace(beta_start, beta_end, T, dtype=torch.float64), "linear")

    @classmethod
    def scaled_linear(
        cls, T: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012
    ) -> "NoiseSchedule":
        """Stable Diffusion's schedule: √β evenly spaced, then squared."""
        _check_T(T)
        _check_beta_range(beta_start, beta_end)
        root = torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=torch.float64)
        return cls(root**2, "scaled_linear")

    @classmethod
    def cosine(cls, T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> "NoiseSchedule":
        """Nichol & Dhariwal (2021) eq. 17: ᾱ(t) = cos²((t/T + s)/(1 + s) · π/2), β clipped at `max_beta`."""
        _check_T(T)
        if not s >= 0:
            raise ValueError(f"cosine offset s must be >= 0, got {s!r}")
        if not 0 < max_beta < 1:
            raise ValueError(f"max_beta must lie strictly between 0 and 1, got {max_beta!r}")
        f = torch.cos((torch.arange(T + 1, dtype=torch.float64) / T + s) / (1 + s) * math.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(max=max_beta)
        return cls(betas, "cosine")

    @classmethod
    def from_kind(cls, kind: str, T: int = 1000, **kwargs) -> "NoiseSchedule":
        """Build a schedule by name: 'linear', 'cosine' or 'scaled_linear' (keyword args pass through)."""
        if kind not in SCHEDULE_KINDS:
            raise ValueError(f"kind must be one of {SCHEDULE_KINDS}, got {kind!r}")
        return getattr(cls, kind)(T, **kwargs)

    # ------------------------------------------------------------------ per-timestep views
    @property
    def T(self) -> int:
        """Number of timesteps."""
        return self.betas.numel()

    def __repr__(self) -> str:
        return (
            f"NoiseSchedule(kind={self.kind!r}, T={self.T}, β∈[{self.betas[0]:.2e}, {self.betas[-1]:.2e}], "
            f"ᾱ_T-1={self.alpha_bars[-1]:.2e})"
        )

    def alpha_bar(self, t) -> Tensor:
        """ᾱ_t for integer timestep(s) t (float64; index with a tensor or an int)."""
        return self.alpha_bars[self._index(t)]

    def signal_scale(self, t) -> Tensor:
        """√ᾱ_t: how much of x_0 survives at step t."""
        return self.alpha_bar(t).sqrt()

    def noise_scale(self, t) -> Tensor:
        """√(1−ᾱ_t): the standard deviation of the noise in x_t."""
        return (1 - self.alpha_bar(t)).sqrt()

    def sigma(self, t) -> Tensor:
        """σ_t = √((1−ᾱ_t)/ᾱ_t), the noise level of the VE view x_t/√ᾱ_t = x_0 + σ_t ε."""
        ab = self.alpha_bar(t)
        return ((1 - ab) / ab).sqrt()

    def snr(self, t) -> Tensor:
        """Signal-to-noise ratio ᾱ_t / (1−ᾱ_t)."""
        ab = self.alpha_bar(t)
        return ab / (1 - ab)

    def log_snr(self, t) -> Tensor:
        """λ_t = log SNR_t (natural log), decreasing in t."""
        return self.snr(t).log()

    @property
    def sigmas(self) -> Tensor:
        """σ_t for every t = 0..T-1 (increasing)."""
        return ((1 - self.alpha_bars) / self.alpha_bars).sqrt()

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])

    # ------------------------------------------------------------------ σ <-> t conversions
    def t_from_sigma(self, sigma) -> Tensor:
        """Continuous timestep for noise level(s) σ, interpolating linearly in log σ (as diffusers does)."""
        sigma = torch.as_tensor(sigma, dtype=torch.float64)
        log_sigmas = self._log_sigmas()
        log_s = sigma.clamp(min=self.sigma_min, max=self.sigma_max).log()
        hi = torch.searchsorted(log_sigmas, log_s.reshape(-1)).clamp(1, self.T - 1).reshape(log_s.shape)
        lo = hi - 1
        w = (log_s - log_sigmas[lo]) / (log_sigmas[hi] - log_sigmas[lo])
        return lo.to(torch.float64) + w.clamp(0, 1)

    def _log_sigmas(self) -> Tensor:
        """log σ_t for t = 0..T-1, computed once (samplers convert σ to t at every step)."""
        cached = self.__dict__.get("_log_sigmas_cache")
        if cached is None or cached[0] is not self.alpha_bars:
            cached = (self.alpha_bars, self.sigmas.log())
            self.__dict__["_log_sigmas_cache"] = cached
        return cached[1]

    @staticmethod
    def alpha_bar_from_sigma(sigma) -> Tensor:
        """ᾱ = 1 / (1 + σ²): the VP signal fraction at VE noise level σ (σ=0 gives ᾱ=1)."""
        sigma = torch.as_tensor(sigma, dtype=torch.float64)
        return 1.0 / (1.0 + sigma**2)

    # ------------------------------------------------------------------ the forward process
    def q_sample(self, x0: Tensor, t, noise: Tensor) -> Tensor:
        """Closed-form jump x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε (Ho et al. eq. 4); t is one int or one per batch item."""
        _check_same_shape(x0, noise, "x0", "noise")
        ab = self._per_item(self.alpha_bar(t), x0)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def q_step(self, x_prev: Tensor, t, noise: Tensor) -> Tensor:
        """One Markov step x_t = √α_t x_{t-1} + √β_t ε (Ho et al. eq. 2); t=0 noises the clean x_0."""
        _check_same_shape(x_prev, noise, "x_prev", "noise")
        a = self._per_item(self.alphas[self._index(t)], x_prev)
        return a.sqrt() * x_prev + (1 - a).sqrt() * noise

    def posterior(self, x0: Tensor, xt: Tensor, t) -> tuple[Tensor, Tensor]:
        """Mean and variance of q(x_{t-1} | x_t, x_0) (Ho et al. eqs. 6-7); at t=0 the variance is 0."""
        _check_same_shape(x0, xt, "x0", "xt")
        idx = self._index(t)
        # coefficients in float64 first: 1 − ᾱ_t cancels badly in float32 at small t
        ab, beta = self.alpha_bars[idx], self.betas[idx]
        ab_prev = torch.where(idx > 0, self.alpha_bars[(idx - 1).clamp(min=0)], torch.ones_like(ab))
        coef_x0 = self._per_item(ab_prev.sqrt() * beta / (1 - ab), xt)
        coef_xt = self._per_item((1 - beta).sqrt() * (1 - ab_prev) / (1 - ab), xt)
        var = self._per_item(beta * (1 - ab_prev) / (1 - ab), xt)
        mean = coef_x0 * x0 + coef_xt * xt
        return mean, var.expand_as(mean)

    # ------------------------------------------------------------------ helpers
    def _index(self, t) -> Tensor:
        t = torch.as_tensor(t)
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise TypeError(f"timestep t must be an integer tensor or int, got dtype {t.dtype}")
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.T):
            raise IndexError(f"timestep t must lie in [0, {self.T - 1}], got values in [{int(t.min())}, {int(t.max())}]")
        return t.cpu().long()

    @staticmethod
    def _per_item(values: Tensor, x: Tensor) -> Tensor:
        """Broadcast one value, or one value per batch item, against x (cast to x's dtype/device)."""
        values = values.to(device=x.device, dtype=x.dtype if x.is_floating_point() else torch.float32)
        if values.ndim == 0:
            return values
        if values.ndim != 1 or values.shape[0] != x.shape[0]:
            raise ValueError(
                f"t must be a single timestep or one per batch item ({x.shape[0]}), got shape {tuple(values.shape)}"
            )
        return values.reshape(-1, *([1] * (x.ndim - 1)))


def alpha_bar_of(sigma: float) -> float:
    """ᾱ = 1 / (1 + σ²) for one noise level (float version of `NoiseSchedule.alpha_bar_from_sigma`, for samplers)."""
    return 1.0 / (1.0 + sigma * sigma)


def _check_T(T) -> None:
    if not isinstance(T, int) or isinstance(T, bool) or T <= 0:
        raise ValueError(f"T (number of timesteps) must be a positive int, got {T!r}")


def _check_beta_range(beta_start: float, beta_end: float) -> None:
    for name, b in (("beta_start", beta_start), ("beta_end", beta_end)):
        if not 0 < b < 1:
            raise ValueError(f"{name} must lie strictly between 0 and 1, got {b!r}")


def _check_same_shape(a: Tensor, b: Tensor, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
