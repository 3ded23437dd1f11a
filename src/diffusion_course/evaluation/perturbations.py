"""The defects generated images have, as functions of a batch: for training a judge that ignores them, and for measuring
whether it does.

Every function takes images (B, 3, H, W) in [-1, 1] and returns a new batch in [-1, 1]; the random ones take an explicit
`torch.Generator`. `augment` mixes the training defects (noise, blur, colour shift, JPEG-like blocks); `resample`
(bilinear down and up) is kept out of training, so a robustness table can show a defect the judge never saw.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

#: The JPEG standard's luminance quantisation table (ITU T.81, Annex K, Table K.1), for 8×8 blocks.
_JPEG_TABLE = torch.tensor([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55], [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62], [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]], dtype=torch.float32)


def _check(images: Tensor) -> None:
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be a (B, 3, H, W) batch in [-1, 1], got shape {tuple(images.shape)}")


def gaussian_noise(images: Tensor, std: float | Tensor, generator: torch.Generator) -> Tensor:
    """Add N(0, std²) to every pixel (std on the [-1, 1] scale; a scalar or one value per image)."""
    _check(images)
    std = torch.as_tensor(std, dtype=images.dtype, device=images.device).reshape(-1, 1, 1, 1)
    noise = torch.randn(images.shape, generator=generator).to(images.device, images.dtype)
    return (images + std * noise).clamp(-1, 1)


def blur(images: Tensor, sigma: float | Tensor = 0.85) -> Tensor:
    """A 3×3 Gaussian blur (reflected edges). sigma 0.85 gives weights of about 1-2-1 / 4 per axis."""
    _check(images)
    sigma = torch.as_tensor(sigma, dtype=images.dtype, device=images.device).reshape(-1, 1)
    taps = torch.exp(-torch.tensor([1.0, 0.0, 1.0], dtype=images.dtype, device=images.device) / (2 * sigma**2))
    taps = taps / taps.sum(1, keepdim=True)  # (B or 1, 3)
    kernel = (taps[:, :, None] * taps[:, None, :]).expand(images.shape[0], 3, 3)
    b, c, h, w = images.shape
    x = F.pad(images, (1, 1, 1, 1), mode="reflect").reshape(1, b * c, h + 2, w + 2)
    weight = kernel.repeat_interleave(c, 0)[:, None]  # one kernel per (image, channel)
    return F.conv2d(x, weight, groups=b * c).reshape(b, c, h, w)


def colour_shift(images: Tensor, amount: float | Tensor, generator: torch.Generator) -> Tensor:
    """Per image and channel, a gain in 1 ± amount and an offset in ±amount (white balance and exposure errors);
    amount: a scalar or one value per image."""
    _check(images)
    amount = torch.as_tensor(amount, dtype=images.dtype, device=images.device).reshape(-1, 1, 1, 1)
    u = torch.rand(2, images.shape[0], 3, 1, 1, generator=generator).to(images.device, images.dtype) * 2 - 1
    return (images * (1 + amount * u[0]) + amount * u[1]).clamp(-1, 1)


def _dct_matrix(n: int = 8) -> Tensor:
    k, i = torch.arange(n, dtype=torch.float32)[:, None], torch.arange(n, dtype=torch.float32)[None]
    m = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2 / n)
    m[0] /= math.sqrt(2)
    return m  # orthonormal DCT-II: rows are the basis


def jpeg_like(images: Tensor, quality: float | Tensor = 50) -> Tensor:
    """JPEG's lossy step without its file format: each channel's 8×8 blocks go through a DCT, are rounded to the
    standard table scaled for `quality` (1-100; per image or one for all), and back. H and W must be multiples of 8."""
    _check(images)
    b, c, h, w = images.shape
    if h % 8 or w % 8:
        raise ValueError(f"jpeg_like needs H and W divisible by 8, got {h}×{w}")
    q = torch.as_tensor(quality, dtype=torch.float32).reshape(-1)
    if bool(((q < 1) | (q > 100)).any()):
        raise ValueError(f"quality must lie in [1, 100], got {quality}")
    scale = torch.where(q < 50, 50 / q, 2 - q / 50)  # the IJG library's mapping from quality to table scale
    table = (_JPEG_TABLE * scale.reshape(-1, 1, 1, 1, 1, 1)).clamp(min=1).to(images.device)
    d = _dct_matrix().to(images.device)
    x = (images.float() + 1) * 127.5 - 128  # JPEG works on level-shifted 0-255 values
    blocks = x.reshape(b, c, h // 8, 8, w // 8, 8).permute(0, 1, 2, 4, 3, 5)  # (b, c, bh, bw, 8, 8)
    coeff = d @ blocks @ d.T
    coeff = torch.round(coeff / table) * table
    x = (d.T @ coeff @ d).permute(0, 1, 2, 4, 3, 5).reshape(b, c, h, w)
    return ((x + 128) / 127.5 - 1).clamp(-1, 1).to(images.dtype)


def resample(images: Tensor, factor: int = 2) -> Tensor:
    """Bilinear down by `factor` and back up: the softness of an upscaled image (held out of `augment`)."""
    _check(images)
    small = F.interpolate(images, scale_factor=1 / factor, mode="bilinear", align_corners=False, antialias=True)
    return F.interpolate(small, size=images.shape[-2:], mode="bilinear", align_corners=False).clamp(-1, 1)


def augment(images: Tensor, generator: torch.Generator, p: float = 0.4) -> Tensor:
    """The training defects, each applied to a random share `p` of the batch with a random strength: noise of std
    0.003-0.06 (log-uniform), a 3×3 blur of sigma 0.4-1.0, a colour shift of up to 0.06, JPEG-like blocks at quality
    50-95. About (1 - p)⁴ of the images (13% at p = 0.4) stay clean. Stronger noise or blockier JPEG would erase the
    faintest gradient backgrounds (two tones 0.06 apart), turning the label into a guess."""
    _check(images)
    b = images.shape[0]

    def pick(low: float, high: float) -> tuple[Tensor, Tensor]:
        chosen = torch.rand(b, generator=generator) < p
        return chosen, low + (high - low) * torch.rand(b, generator=generator)

    def where(chosen: Tensor, changed: Tensor, unchanged: Tensor) -> Tensor:
        return torch.where(chosen.to(unchanged.device).reshape(-1, 1, 1, 1), changed, unchanged)

    out = images
    chosen, sigma = pick(0.4, 1.0)
    out = where(chosen, blur(out, sigma), out)
    chosen, amount = pick(0.0, 0.06)
    out = colour_shift(out, torch.where(chosen, amount, torch.zeros(b)), generator)
    chosen, quality = pick(50.0, 95.0)
    out = where(chosen, jpeg_like(out, quality), out)
    chosen, log_std = pick(math.log(0.003), math.log(0.06))
    return gaussian_noise(out, torch.where(chosen, log_std.exp(), torch.zeros(b)), generator)
