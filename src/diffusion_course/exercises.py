"""Exercise checkers and reference solutions for the notebooks.

In a notebook, a learner fills in a function, then a check cell calls `check(name, their_fn)`:
it prints "✓ correct" or what went wrong, and says "not attempted yet" (without failing) while
the function still raises NotImplementedError. `show_solution(name)` prints the reference answer.
"""
from __future__ import annotations

import inspect
from typing import Callable

import torch
from torch import Tensor

from .schedules import NoiseSchedule


# ---------------------------------------------------------------- reference solutions
def q_sample(x0: Tensor, t: int, noise: Tensor, alpha_bars: Tensor) -> Tensor:
    """Notebook 01: the closed-form jump x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε."""
    ab = alpha_bars[t]
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def training_loss(net, x0: Tensor, t: Tensor, noise: Tensor, alpha_bars: Tensor) -> Tensor:
    """Notebook 02: Algorithm 1's loss ‖ε − ε_θ(√ᾱ_t x_0 + √(1−ᾱ_t) ε, t)‖², averaged over the batch."""
    ab = alpha_bars[t].reshape(-1, *[1] * (x0.ndim - 1)).to(x0.dtype)
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    return (net(x_t, t.float()) - noise).pow(2).mean()


def reverse_step(eps_hat: Tensor, x_t: Tensor, t: int, z: Tensor, betas: Tensor) -> Tensor:
    """Notebook 02: Algorithm 2, line 4: x_{t−1} = (x_t − β_t/√(1−ᾱ_t) ε̂)/√α_t + σ_t z, with σ_t² = β̃_t."""
    alphas = 1 - betas
    alpha_bars = torch.cumprod(alphas, 0)
    ab_prev = alpha_bars[t - 1] if t > 0 else torch.ones((), dtype=alpha_bars.dtype)
    mean = (x_t - betas[t] / (1 - alpha_bars[t]).sqrt() * eps_hat) / alphas[t].sqrt()
    var = betas[t] * (1 - ab_prev) / (1 - alpha_bars[t])
    return mean + var.sqrt() * z if t > 0 else mean


def attention_weights(q: Tensor, k: Tensor) -> Tensor:
    """Notebook 03: softmax(q kᵀ / √d) over the keys, for q (B, N, d) and k (B, M, d) → (B, N, M)."""
    return (q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5).softmax(dim=-1)


def v_target(x0: Tensor, noise: Tensor, alpha_bar: Tensor) -> Tensor:
    """Notebook 04: v = √ᾱ_t ε − √(1−ᾱ_t) x_0 (Salimans & Ho 2022), ᾱ_t broadcast over the image dimensions."""
    return alpha_bar.sqrt() * noise - (1 - alpha_bar).sqrt() * x0


SOLUTIONS: dict[str, Callable] = {"q_sample": q_sample, "training_loss": training_loss, "reverse_step": reverse_step,
                                  "attention_weights": attention_weights, "v_target": v_target}


# ---------------------------------------------------------------- checkers
def _cases(name: str):
    g = torch.Generator().manual_seed(7)
    sched = NoiseSchedule.linear(100)
    ab, betas = sched.alpha_bars.float(), sched.betas.float()
    if name == "q_sample":
        for t in (0, 10, 99):
            x0, noise = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
            yield (x0, t, noise, ab)
    elif name == "training_loss":
        net = _FixedNet()
        for _ in range(3):
            x0, noise = torch.randn(8, 2, generator=g), torch.randn(8, 2, generator=g)
            yield (net, x0, torch.randint(0, 100, (8,), generator=g), noise, ab)
    elif name == "reverse_step":
        for t in (99, 40, 1, 0):
            yield (torch.randn(5, 2, generator=g), torch.randn(5, 2, generator=g), t, torch.randn(5, 2, generator=g), betas)
    elif name == "attention_weights":
        for n, m, d in ((4, 4, 8), (6, 3, 16)):
            yield (torch.randn(2, n, d, generator=g), torch.randn(2, m, d, generator=g))
    elif name == "v_target":
        ab = torch.tensor([0.999, 0.5, 1e-3]).reshape(3, 1, 1, 1)
        yield (torch.randn(3, 3, 4, 4, generator=g), torch.randn(3, 3, 4, 4, generator=g), ab)


class _FixedNet(torch.nn.Module):
    """A fixed, non-trivial stand-in for ε_θ(x_t, t) so loss checks need no training."""

    def forward(self, x, t):
        return torch.tanh(x) * (t[:, None] / 100.0)


def check(name: str, fn: Callable) -> bool:
    """Compare a learner's `fn` with the reference solution `name` on a few fixed inputs; print the verdict."""
    if name not in SOLUTIONS:
        raise ValueError(f"name must be one of {tuple(SOLUTIONS)}, got {name!r}")
    for args in _cases(name):
        try:
            got = fn(*args)
        except NotImplementedError:
            print(f"Exercise '{name}': not attempted yet. Fill in the cell above and run this one again.")
            return False
        want = SOLUTIONS[name](*args)
        if not torch.is_tensor(got) or got.shape != want.shape:
            print(f"✗ '{name}': expected a tensor of shape {tuple(want.shape)}, got {getattr(got, 'shape', type(got))}")
            return False
        if not torch.allclose(got.double(), want.double(), atol=1e-5, rtol=1e-4):
            print(f"✗ '{name}': wrong values (largest error {(got.double() - want.double()).abs().max():.3g}). "
                  f"Hint: {inspect.getdoc(SOLUTIONS[name]).splitlines()[0]}")
            return False
    print(f"✓ '{name}' is correct.")
    return True


def show_solution(name: str) -> None:
    """Print the reference solution's source."""
    if name not in SOLUTIONS:
        raise ValueError(f"name must be one of {tuple(SOLUTIONS)}, got {name!r}")
    print(inspect.getsource(SOLUTIONS[name]))
