"""Expert denoisers: one network for the high noise levels, another for the low ones (notebook 08).

    t ≥ t_switch ─→ high (lays out the image: what, where, which colour)
    t <  t_switch ─→ low  (draws the fine detail: edges, corners)

eDiff-I (Balaji et al. 2022) trains a family of such experts, each on its own band of noise levels; Stable Diffusion XL
ships a "refiner", a second latent model for the last, low-noise steps. A sampler does not need to know: it calls one
network, which hands each step to the expert for its noise level. Both experts predict the same target for the same
schedule, so the switch is seamless in the maths; whether it is in the pictures is measured in notebook 08.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


class SwitchAtTimestep(nn.Module):
    """`net(x_t, t, cond)` that runs `low` for timesteps t < t_switch and `high` for the others.

    A batch whose items all lie on one side (every sampler step: one noise level for the batch) runs one network; a
    batch mixing both runs both and picks per item. `config` is `high`'s, so code that reads a U-Net's config (its
    image size, its channels) sees the base model's."""

    def __init__(self, high: nn.Module, low: nn.Module, t_switch: float):
        super().__init__()
        if not t_switch > 0:
            raise ValueError(f"t_switch must be positive, got {t_switch}")
        self.high, self.low, self.t_switch = high, low, float(t_switch)
        self.config = getattr(high, "config", None)

    def forward(self, x: Tensor, t: Tensor, cond=None) -> Tensor:
        t = torch.as_tensor(t, device=x.device)
        if t.ndim != 1 or t.shape[0] != x.shape[0]:
            raise ValueError(f"t must hold one timestep per item, shape ({x.shape[0]},), got {tuple(t.shape)}")
        low = t < self.t_switch
        if bool(low.all()):
            return self.low(x, t, cond)
        if not bool(low.any()):
            return self.high(x, t, cond)
        pick = low.reshape(-1, *[1] * (x.ndim - 1))
        return torch.where(pick, self.low(x, t, cond), self.high(x, t, cond))
