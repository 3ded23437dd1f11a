"""Classifier-free guidance as a wrapper: it takes a denoiser and returns a denoiser, so every sampler gets it.

Ho & Salimans (2022): with one network trained both with and without its condition,

    ε̂_w = ε̂(x, ∅) + w · (ε̂(x, c) − ε̂(x, ∅))

w = 0 is the unconditional model, w = 1 the plain conditional one, w > 1 pushes samples towards
what distinguishes c. Because x̂₀ = x − σ ε̂ is affine in ε̂ for a fixed x, the same combination of
x̂₀ predictions is exactly the same guidance, so we combine denoiser outputs and stay agnostic of
what the network predicts. A negative condition n replaces ∅: ε̂_w = ε̂(x, n) + w (ε̂(x, c) − ε̂(x, n)),
steering away from n ("negative prompts").
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor


def cat_cond(a, b):
    """Concatenate two conditions along the batch (None, label tensors, or dicts of tensors)."""
    if a is None and b is None:
        return None
    if torch.is_tensor(a) and torch.is_tensor(b):
        return torch.cat([a, b])
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        return {k: torch.cat([a[k], b[k]]) for k in a}
    raise TypeError(f"cannot batch conditions of types {type(a).__name__} and {type(b).__name__} (or dict keys differ)")


def check_scale(scale, name: str = "guidance scale") -> None:
    """Refuse, naming the argument, a guidance weight that is not a finite number >= 0."""
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {scale!r}")


class ClassifierFreeGuidance:
    """D_w(x, σ, c) = D(x, σ, ∅) + w (D(x, σ, c) − D(x, σ, ∅)), one batched network call per step.

    denoiser: an unclipped denoiser D(x, σ, cond) → x̂₀ (clipping is applied after combining).
    scale: the guidance weight w.
    null_cond: callable(batch_size, device) → the "no condition" for a batch (label id or empty prompt).
    negative: optional fixed negative condition (same batch size as the samples) used instead of ∅.
    clip: clamp the combined x̂₀ to [-clip, clip] (pixels) or None (latents).
    interval: (σ_lo, σ_hi): guide only at noise levels σ_lo < σ ≤ σ_hi and use the conditional denoiser alone
        (w = 1) elsewhere — guidance in a limited interval (Kynkäänniemi et al. 2024). None: guide at every step.
    """

    def __init__(self, denoiser: Callable, scale: float, null_cond: Callable, negative=None, clip: float | None = None,
                 interval: tuple[float, float] | None = None):
        check_scale(scale, "guidance scale")
        if interval is not None and not (len(interval) == 2 and 0 <= interval[0] < interval[1]):
            raise ValueError(f"interval must be (σ_lo, σ_hi) with 0 <= σ_lo < σ_hi, got {interval}")
        self.denoiser, self.scale, self.null_cond, self.negative, self.clip = denoiser, scale, null_cond, negative, clip
        self.interval = interval

    def _inside(self, sigma) -> Tensor | bool:
        """Whether σ (a number, or one per sample) lies in the guidance interval."""
        if self.interval is None:
            return True
        sig = torch.as_tensor(sigma, dtype=torch.float64)
        inside = (sig > self.interval[0]) & (sig <= self.interval[1])
        return bool(inside) if inside.ndim == 0 else inside

    def __call__(self, x: Tensor, sigma, cond=None) -> Tensor:
        uncond = self.negative if self.negative is not None else self.null_cond(x.shape[0], x.device)
        inside = self._inside(sigma)
        if cond is None or (self.scale == 0 and inside is True):  # the unconditional (or negative) model alone
            out = self.denoiser(x, sigma, uncond)
        elif inside is False or (self.scale == 1 and self.negative is None):  # no guidance at this σ: one call
            out = self.denoiser(x, sigma, cond)
        else:
            sig = torch.as_tensor(sigma, dtype=torch.float64)
            sig = torch.cat([sig, sig]) if sig.ndim == 1 else sig
            both = self.denoiser(torch.cat([x, x]), sig, cat_cond(cond, uncond))  # one batched call
            d_cond, d_uncond = both.chunk(2)
            out = d_uncond + self.scale * (d_cond - d_uncond)
            if inside is not True:  # one σ per sample, some outside the interval: those keep the conditional denoiser
                out = torch.where(inside.to(out.device).view(-1, *[1] * (out.ndim - 1)), out, d_cond)
        return out.clamp(-self.clip, self.clip) if self.clip is not None else out


def label_null(null_id: int) -> Callable:
    """null_cond for a class-conditional model: every example gets the "no label" id."""
    def null(batch_size: int, device=None) -> Tensor:
        return torch.full((batch_size,), null_id, dtype=torch.long, device=device)

    return null
