"""Measurements for appendix A3, "Closing the latent gap": where the mini Stable Diffusion loses requested shapes.

    shape_probe      a small classifier that names the shape from a latent alone (what the latents hold)
    finish_from      real latents noised to σ, then sampled to 0 with their captions (SDEdit used as a probe)
    share_right      the share of images whose attribute is read as requested, group by group

Nothing a recipe or a lesson trains uses these.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..core.denoisers import Denoiser
from ..core.guidance import ClassifierFreeGuidance
from ..core.samplers import sample
from ..runtime import randint, randn


def shape_probe(latents: Tensor, labels: Tensor, n_classes: int, steps: int, batch_size: int = 256, lr: float = 2e-3,
                seed: int = 0) -> nn.Module:
    """A classifier (3 convolutions, 2 linear layers) trained `steps` AdamW steps (one-cycle learning rate) to name
    `labels` from `latents` (B, C, h, w) alone, returned in eval mode. What it reads is a lower bound on what the
    latents hold: a better probe could only read more."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    c, h, w = latents.shape[1:]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = nn.Sequential(
            nn.Conv2d(c, 64, 3, padding=1), nn.GELU(), nn.Conv2d(64, 128, 3, padding=1), nn.GELU(),
            nn.Conv2d(128, 128, 3, stride=2, padding=1), nn.GELU(), nn.Flatten(),
            nn.Linear(128 * ((h + 1) // 2) * ((w + 1) // 2), 256), nn.GELU(), nn.Linear(256, n_classes))
    net = net.to(latents.device)
    opt = torch.optim.AdamW(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
    g, labels = torch.Generator().manual_seed(seed), labels.to(latents.device)
    for _ in range(steps):
        idx = randint(len(latents), (batch_size,), g, device=latents.device)
        loss = nn.functional.cross_entropy(net(latents[idx]), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
    return net.eval()


@torch.no_grad()
def finish_from(model, schedule, latents: Tensor, captions: list[str], sigma_start: float, sigmas: Tensor,
                guidance: float = 3.0, seed: int = 0, prediction: str = "v") -> Tensor:
    """Scaled `latents` noised to `sigma_start` (x = z + σ ε, ε from `seed`), then sampled to 0 by DPM-Solver++(2M)
    with their `captions` at classifier-free guidance `guidance`, on the levels of the grid `sigmas` below sigma_start.
    sigma_start = 0 returns the latents; at the top of the grid it is ordinary sampling (Meng et al. 2022, SDEdit)."""
    if sigma_start <= 0:
        return latents.clone()
    grid = torch.cat([torch.tensor([float(sigma_start)]), sigmas[sigmas < sigma_start].double().cpu()])
    x = latents + sigma_start * randn(latents.shape, torch.Generator().manual_seed(seed), device=latents.device)
    null = lambda b, dev=None: model.conditioner.tokenize([""] * b, dev)  # noqa: E731
    denoiser = ClassifierFreeGuidance(Denoiser(model, schedule, prediction=prediction), guidance, null)
    return sample("dpmpp_2m", denoiser, x, grid, cond=model.conditioner.tokenize(captions, latents.device))


def share_right(read: Tensor, want: Tensor, groups: dict[str, Tensor]) -> dict[str, float]:
    """{group name: the share of the images in the group (a boolean mask) whose `read` value equals `want`}; NaN for
    an empty group."""
    return {name: float((read[mask] == want[mask]).float().mean()) if bool(mask.any()) else float("nan")
            for name, mask in groups.items()}
