"""Sinusoidal embeddings of the (possibly fractional) timestep, shared by every network in the course, and the masked
mean that pools a token sequence into one vector (the text encoder's `pooled`, the U-Net's `context_pooling`)."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Transformer-style sinusoidal features of timesteps t (shape (B,)) → (B, dim): [cos | sin].

    Frequencies are geometric from 1 down to 1/max_period (Vaswani et al. 2017, §3.5;
    used for diffusion timesteps by Ho et al. 2020). Works for fractional t, which σ-based
    samplers need.
    """
    if dim % 2:
        raise ValueError(f"dim must be even, got {dim}")
    t = torch.as_tensor(t)
    if t.ndim == 0:
        t = t[None]
    if t.ndim != 1:
        raise ValueError(f"t must be a scalar or a 1-D tensor of timesteps, got shape {tuple(t.shape)}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


def masked_mean(tokens: Tensor, mask: Tensor | None = None) -> Tensor:
    """The mean over real tokens: (B, L, D) features and a (B, L) mask, True for real tokens → (B, D).

    mask None means every token is real. Padding never contributes, whatever its features hold; a row with no real token
    gives zeros rather than NaN."""
    if tokens.ndim != 3:
        raise ValueError(f"tokens must be (B, L, D), got shape {tuple(tokens.shape)}")
    if mask is not None and tuple(mask.shape) != tuple(tokens.shape[:2]):
        raise ValueError(f"mask must be (B, L) = {tuple(tokens.shape[:2])}, got shape {tuple(mask.shape)}")
    keep = (torch.ones(tokens.shape[:2], device=tokens.device) if mask is None else mask)[..., None].to(tokens.dtype)
    return (tokens * keep).sum(1) / keep.sum(1).clamp(min=1)


class TimeEmbedding(nn.Module):
    """Sinusoidal features of t followed by a 2-layer MLP: t → (B, out_dim)."""

    def __init__(self, out_dim: int, freq_dim: int | None = None):
        super().__init__()
        self.freq_dim = freq_dim or out_dim
        self.mlp = nn.Sequential(nn.Linear(self.freq_dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))

    def forward(self, t: Tensor) -> Tensor:
        return self.mlp(timestep_embedding(t, self.freq_dim).to(self.mlp[0].weight.dtype))  # the network's precision
