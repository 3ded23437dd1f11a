"""Generating many samples at once: batched sampling with optional guidance, for notebooks, recipes and benchmarks."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .denoisers import Denoiser
from .guidance import ClassifierFreeGuidance, check_scale
from .samplers import prior_sample, sample
from .schedules import NoiseSchedule
from .spacing import make_sigmas

#: The sampler the course measures its shipped pixel models with (notebook 05 compares the alternatives).
EVAL_SAMPLER, EVAL_STEPS, EVAL_SPACING = "dpmpp_2m", 20, "trailing"


def _slice(cond, i: int, j: int, device):
    if cond is None:
        return None
    if torch.is_tensor(cond):
        return cond[i:j].to(device)
    return {k: v[i:j].to(device) for k, v in cond.items()}


def _size(cond) -> int:
    return cond.shape[0] if torch.is_tensor(cond) else next(iter(cond.values())).shape[0]


def _check(n, guidance, batch) -> None:
    """One clear sentence for each argument `generate` cannot use."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive number of samples, got {n!r}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive number of samples per batch, got {batch!r}")
    if guidance is not None:
        check_scale(guidance, "guidance")


@torch.no_grad()
def generate(net, schedule: NoiseSchedule, n: int, *, seed: int, prediction: str, device=None, cond=None,
             guidance: float | None = None, null_cond: Callable | None = None, negative=None,
             sampler: str = EVAL_SAMPLER, steps: int = EVAL_STEPS, spacing: str = EVAL_SPACING,
             shape: tuple[int, ...] = (3, 32, 32), clip: float | None = 1.0, batch: int = 250,
             decode: Callable | None = None, guidance_interval: tuple[float, float] | None = None,
             **options) -> Tensor:
    """n samples in batches, returned on the CPU.

    prediction: what `net` predicts ('eps', 'x0' or 'v'; a checkpoint's JSON records it under meta.train).
    Randomness: the initial noise of all n samples comes from one generator seeded `seed`, drawn up
    front, so deterministic samplers give the same samples whatever `batch` is, up to float round-off
    (not bit for bit: a network's kernels may sum in another order for another batch size; up to about
    1e-4 for the shipped unconditional U-Net, batch 1 against 64); the fresh noise of stochastic
    samplers comes from a second generator (seed + 1), consumed batch by batch.
    cond: per-sample conditions (labels or a dict of tensors with n rows), or None.
    guidance: classifier-free guidance scale w (needs `null_cond(batch_size, device)`); None = no guidance.
    negative: per-sample negative conditions (same layout as cond) replacing the null one.
    decode: maps final samples to images (latent models); pixel models leave it None and are clamped to [-1, 1].
    guidance_interval: (σ_lo, σ_hi): guide only at σ_lo < σ ≤ σ_hi (`ClassifierFreeGuidance`'s interval); None: at
    every step.
    """
    _check(n, guidance, batch)
    if cond is not None and _size(cond) != n:
        raise ValueError(f"cond must have n={n} rows, got {_size(cond)}")
    param = next(net.parameters())
    device = device or param.device
    sigmas = make_sigmas(schedule, steps, spacing)
    base = Denoiser(net, schedule, prediction=prediction, clip=None if guidance else clip)
    noise = prior_sample((n, *shape), float(sigmas[0]), torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed + 1)
    out = []
    for i in range(0, n, batch):
        j = min(n, i + batch)
        denoiser = base
        if guidance is not None:
            if null_cond is None:
                raise ValueError("guidance needs null_cond(batch_size, device), the condition meaning 'nothing'")
            denoiser = ClassifierFreeGuidance(base, guidance, null_cond, negative=_slice(negative, i, j, device),
                                              clip=clip, interval=guidance_interval)
        x = noise[i:j].to(device, param.dtype)  # the model's precision (float32; float64 or bfloat16 if it is so)
        x = sample(sampler, denoiser, x, sigmas, cond=_slice(cond, i, j, device), generator=g, **options)
        out.append((decode(x) if decode is not None else x.clamp(-1, 1)).cpu().float())
    return torch.cat(out)
