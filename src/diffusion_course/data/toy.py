"""Seeded 2-D toy distributions for the first training loop (notebook 02).

Each generator returns an (n, 2) float32 tensor scaled to roughly zero mean and unit
variance per axis, so one noise schedule suits all of them.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor


def _moons(n: int, g: torch.Generator) -> Tensor:
    n_top = n // 2
    angle = torch.rand(n, generator=g) * math.pi
    top = torch.arange(n) < n_top
    x = torch.where(top, torch.cos(angle), 1 - torch.cos(angle))
    y = torch.where(top, torch.sin(angle), 0.5 - torch.sin(angle))
    pts = torch.stack([x, y], dim=1) + 0.06 * torch.randn(n, 2, generator=g)
    return pts[torch.randperm(n, generator=g)]


def _swiss_roll(n: int, g: torch.Generator) -> Tensor:
    turn = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=g))
    pts = torch.stack([turn * torch.cos(turn), turn * torch.sin(turn)], dim=1)
    return pts + 0.4 * torch.randn(n, 2, generator=g)


def _gaussians(n: int, g: torch.Generator) -> Tensor:
    k = 8
    which = torch.randint(0, k, (n,), generator=g).float()
    centres = torch.stack([torch.cos(2 * math.pi * which / k), torch.sin(2 * math.pi * which / k)], 1)
    return 2.0 * centres + 0.15 * torch.randn(n, 2, generator=g)


def _rings(n: int, g: torch.Generator) -> Tensor:
    radius = torch.tensor([0.5, 1.25, 2.0])[torch.randint(0, 3, (n,), generator=g)]
    angle = 2 * math.pi * torch.rand(n, generator=g)
    pts = radius[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
    return pts + 0.06 * torch.randn(n, 2, generator=g)


def _checkerboard(n: int, g: torch.Generator) -> Tensor:
    # a 4x4 board on [-2, 2]^2; points fall uniformly on the 8 squares with (col + row) even
    cells = torch.tensor([(c, r) for c in range(4) for r in range(4) if (c + r) % 2 == 0], dtype=torch.float32)
    corner = cells[torch.randint(0, len(cells), (n,), generator=g)] - 2
    return corner + torch.rand(n, 2, generator=g)


_GENERATORS = {
    "moons": _moons,
    "swiss_roll": _swiss_roll,
    "gaussians": _gaussians,
    "rings": _rings,
    "checkerboard": _checkerboard,
}

#: Names accepted by `make_toy_data`.
TOY_DATASETS = tuple(_GENERATORS)


def make_toy_data(name: str, n: int, seed: int = 0) -> Tensor:
    """`n` points of the 2-D dataset `name` (one of `TOY_DATASETS`), standardised, deterministic in `seed`."""
    if name not in _GENERATORS:
        raise ValueError(f"name must be one of {TOY_DATASETS}, got {name!r}")
    if not isinstance(n, int) or n <= 0:
        raise ValueError(f"n must be a positive int, got {n!r}")
    g = torch.Generator().manual_seed(seed)
    pts = _GENERATORS[name](n, g).double()
    # Standardise with the statistics of a large fixed reference sample, so every n and seed shares one scale.
    ref = _GENERATORS[name](20_000, torch.Generator().manual_seed(12345)).double()
    return ((pts - ref.mean(0)) / ref.std(0)).float()
