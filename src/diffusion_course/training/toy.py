"""A small training loop for 2-D data (lesson 02): Adam, cosine decay, the diffusion loss."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..core.loss import diffusion_loss
from ..core.schedules import NoiseSchedule
from ..runtime import progress, randint
from .optimiser import update


def train_toy(net: nn.Module, data: Tensor, schedule: NoiseSchedule, *, steps: int = 3000, batch_size: int = 256,
              lr: float = 2e-3, seed: int = 0, show_progress: bool = True) -> list[float]:
    """Train `net` on the points `data` with Adam and a cosine learning-rate decay; returns the loss per step."""
    if steps <= 0 or batch_size <= 0:
        raise ValueError(f"steps and batch_size must be positive, got {steps} and {batch_size}")
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=lr * 0.05)
    losses = []
    net.train()
    for _ in progress(range(steps), desc="training", disable=not show_progress):
        batch = data[randint(data.shape[0], (batch_size,), g)].to(next(net.parameters()).device)
        loss = diffusion_loss(net, batch, schedule, generator=g)
        update(opt, loss, sched)
        losses.append(loss.item())
    net.eval()
    return losses
