"""One optimiser update, written once for every training loop of the course."""
from __future__ import annotations

from torch import Tensor, nn, optim


def update(opt: optim.Optimizer, loss: Tensor, scheduler=None, clip: float = 0.0,
           params: list[nn.Parameter] | None = None) -> None:
    """Clear the gradients, backpropagate `loss`, clip their global norm to `clip` (if > 0; over `params`, the
    optimiser's own parameters by default), step the optimiser, then the learning-rate `scheduler` if given."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip > 0:
        nn.utils.clip_grad_norm_(params if params is not None else [p for g in opt.param_groups for p in g["params"]],
                                 clip)
    opt.step()
    if scheduler is not None:
        scheduler.step()
