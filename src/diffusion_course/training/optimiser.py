"""One optimiser update, written once for every training loop of the course, and stopped by non-finite numbers."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn, optim


class NonFiniteError(FloatingPointError):
    """The loss or the gradients became NaN or infinite: training stops before the weights are spoiled."""


def update(opt: optim.Optimizer, loss: Tensor, scheduler=None, clip: float = 0.0,
           params: list[nn.Parameter] | None = None, step: int | None = None) -> None:
    """Clear the gradients, backpropagate `loss`, clip their global norm to `clip` (if > 0; over `params`, the
    optimiser's own parameters by default), step the optimiser, then the learning-rate `scheduler` if given.

    A NaN or infinite loss or gradient norm raises NonFiniteError before the optimiser moves any weight (one NaN pixel
    or a learning rate far too high would otherwise turn every weight into NaN while training carried on).
    """
    where = "" if step is None else f" at step {step}"
    if not bool(torch.isfinite(loss.detach()).all()):
        raise NonFiniteError(f"training stopped{where}: the loss is {float(loss.detach().float().mean())} (NaN or "
                             "infinite data, or a learning rate too high); the weights were not updated")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    params = params if params is not None else [p for g in opt.param_groups for p in g["params"]]
    norm = nn.utils.clip_grad_norm_(params, clip if clip > 0 else math.inf)  # with no clip: measured, not changed
    if not bool(torch.isfinite(norm)):
        raise NonFiniteError(f"training stopped{where}: the gradients are NaN or infinite (norm {float(norm)}); the "
                             "weights were not updated")
    opt.step()
    if scheduler is not None:
        scheduler.step()
