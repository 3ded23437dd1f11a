"""A small MLP noise predictor for 2-D data, with a sinusoidal time embedding (notebook 02)."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .embeddings import TimeEmbedding


class ToyMLP(nn.Module):
    """ε-predictor for points in R^dim: `model(x_t, t) -> ε̂`, the course's model contract.

    Each hidden block adds the time embedding to its input, so every layer knows the noise level.
    """

    def __init__(self, dim: int = 2, hidden: int = 128, depth: int = 3, time_dim: int = 64):
        super().__init__()
        self.dim = dim
        self.time = TimeEmbedding(hidden, time_dim)
        self.inp = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden)) for _ in range(depth)
        )
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor, t: Tensor, cond=None) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (batch, {self.dim}), got {tuple(x.shape)}")
        t = torch.as_tensor(t, device=x.device)
        t = t.expand(x.shape[0]) if t.ndim == 0 else t
        temb = self.time(t)
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h + temb)
        return self.out(h)
