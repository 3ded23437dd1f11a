"""Latent diffusion's adapter: images ⇄ scaled VAE latents, around samplers that know nothing of latents.

    training data:  z = s · μ(x)                    LatentAdapter.to_latent (μ: the VAE posterior's mean)
    sampling:       z_T → any sampler → z₀ → x = D(z₀ / s), clamped to [-1, 1]    LatentAdapter.to_image

s is the latent scaling factor, `VAEConfig.scaling_factor`. It makes the latents about unit-variance,
which the noise schedules assume (data of scale ~1, prior N(0, I)). Rombach et al. (2022) chose it
as 1/σ̂, the standard deviation of the latents of a batch of training images; Stable Diffusion's
0.18215 came out of that. `compute_scaling_factor` repeats the estimate on our data and
`with_scaling_factor` stores it in the config, so it is saved with the checkpoint and never written
as a literal. Like Stable Diffusion (before SD3's `shift_factor`), the latents' mean is not removed.

Samplers (`core/samplers.py`) and denoisers stay unchanged: a denoiser trained on `to_latent(images)` is
sampled with latent-shaped noise (`LatentAdapter.noise`), and only the final latents are decoded:
`generate(..., shape=adapter.latent_shape(), decode=adapter.to_image, clip=None)`.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from ..core.samplers import prior_sample
from .vae import VAE, VAEConfig

DEFAULT_BATCH_SIZE = 256  # images encoded or decoded per forward pass (bounds memory, not results)


def _device(vae: VAE) -> torch.device:
    return next(vae.parameters()).device


def _check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")


@torch.no_grad()
def encode_latents(vae: VAE, images: Tensor, *, batch_size: int = DEFAULT_BATCH_SIZE,
                   generator: torch.Generator | None = None) -> Tensor:
    """Unscaled latents of `images` on vae's device: posterior means, or samples when `generator` is given."""
    _check_batch_size(batch_size)
    device, out = _device(vae), []
    for chunk in images.split(batch_size):
        posterior = vae.encode(chunk.to(device))
        out.append(posterior.mode() if generator is None else posterior.sample(generator))
    return torch.cat(out)


def compute_scaling_factor(vae: VAE, images: Tensor, *, batch_size: int = DEFAULT_BATCH_SIZE,
                           generator: torch.Generator | None = None) -> float:
    """1 / std of the latents of `images` over all elements (posterior means; samples when given a generator)."""
    z = encode_latents(vae, images, batch_size=batch_size, generator=generator)
    std = float(z.double().std(correction=0))
    if not std > 0:
        raise ValueError(f"the latents of images have standard deviation {std}; need at least two different values")
    return 1.0 / std


def with_scaling_factor(config: VAEConfig, scaling_factor: float) -> VAEConfig:
    """A copy of `config` with `scaling_factor` filled in (e.g. from `compute_scaling_factor`)."""
    return dataclasses.replace(config, scaling_factor=float(scaling_factor))


class LatentAdapter:
    """Encode images to scaled latents and decode latents to images; whatever runs in between never sees the VAE."""

    def __init__(self, vae: VAE, batch_size: int = DEFAULT_BATCH_SIZE):
        _check_batch_size(batch_size)
        self.vae, self.batch_size = vae, batch_size

    @property
    def scaling_factor(self) -> float:
        """s, read from the VAE's config each time (so calibrating the config later takes effect)."""
        return self.vae.config.scaling_factor

    def latent_shape(self, image_size: int | None = None) -> tuple[int, int, int]:
        """(channels, height, width) of the latent of a square image (default: the VAE's training size)."""
        cfg = self.vae.config
        side = cfg.latent_size(cfg.image_size if image_size is None else image_size)
        return cfg.latent_channels, side, side

    def scale(self, z: Tensor) -> Tensor:
        """VAE latent → diffusion latent: z · s."""
        return z * self.scaling_factor

    def unscale(self, latents: Tensor) -> Tensor:
        """Diffusion latent → VAE latent: latents / s (the inverse of `scale`)."""
        return latents / self.scaling_factor

    def to_latent(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Scaled latents of images in [-1, 1]: the posterior mean, or a posterior sample drawn from `generator`."""
        return self.scale(encode_latents(self.vae, images, batch_size=self.batch_size, generator=generator))

    @torch.no_grad()
    def to_image(self, latents: Tensor) -> Tensor:
        """Images in [-1, 1] from scaled latents: unscale, decode, clamp."""
        device = _device(self.vae)
        parts = [self.vae.decode(self.unscale(chunk.to(device))) for chunk in latents.split(self.batch_size)]
        return torch.cat(parts).clamp(-1.0, 1.0)

    def noise(self, n: int, sigma_max: float, *, image_size: int | None = None,
              generator: torch.Generator | None = None) -> Tensor:
        """n starting points for a sampler in latent space: N(0, (1 + σ_max²) I), on the VAE's device."""
        return prior_sample((n, *self.latent_shape(image_size)), sigma_max, generator, device=_device(self.vae))
