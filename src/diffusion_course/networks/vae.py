"""The latent autoencoder: a convolutional VAE with a KL term, built like Stable Diffusion's AutoencoderKL.

    x (B, 3, H, W) ─encoder→ moments ─quant_conv→ q(z|x) = N(μ, σ²) ─z→ post_quant_conv ─decoder→ x̂

Module names and parameter names mirror `diffusers.AutoencoderKL` (class names too: ResnetBlock2D,
Downsample2D, UNetMidBlock2D, ...), so a checkpoint's keys read like Stable Diffusion's and
`diffusers_export.py` can copy our weights into an AutoencoderKL that computes the same function.
The one naming difference: our attention's output projection is `to_out`, diffusers' is `to_out.0`.

`block_out_channels` has one width per resolution level; every level but the last halves H and W,
so 3 levels give a downsampling factor f = 4 (32×32×3 → 8×8×4). The VAE itself never applies the
latent scale factor: `config.scaling_factor` (computed from data, see `latent.py`) is applied by
`LatentAdapter`, as Stable Diffusion's pipelines apply `vae.config.scaling_factor`.

Its loss and training loop are in `training/vae.py`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..runtime import randn

NORM_EPS = 1e-6  # GroupNorm ε of diffusers' VAE blocks (PyTorch's default is 1e-5)
LOGVAR_RANGE = (-30.0, 20.0)  # log σ² is clamped here, as in diffusers/LDM, so exp() stays finite


@dataclass
class VAEConfig:
    in_channels: int = 3  # image channels (RGB)
    latent_channels: int = 4  # channels of the latent z (Stable Diffusion: 4)
    block_out_channels: tuple[int, ...] = (32, 64, 64)  # width per resolution level; levels − 1 halvings (3 → f=4)
    layers_per_block: int = 1  # ResNet blocks per level in the encoder (the decoder has one more, as in diffusers)
    norm_num_groups: int = 8  # GroupNorm groups (diffusers defaults to 32; 8 keeps ≥4 channels per group here)
    mid_attention: bool = True  # self-attention between the two middle ResNet blocks, at the latent resolution
    image_size: int = 32  # training image size (diffusers' `sample_size`); any multiple of the factor works
    scaling_factor: float = 1.0  # latent scale, 1/std of the latents on data; 1.0 until computed (latent.py)

    def __post_init__(self):
        self.block_out_channels = tuple(int(c) for c in self.block_out_channels)
        ch, g = self.block_out_channels, self.norm_num_groups
        if not ch or g < 1 or any(c < 1 or c % g for c in ch):
            raise ValueError(f"block_out_channels must be non-empty, each divisible by norm_num_groups={g}, got {ch}")
        for name in ("in_channels", "latent_channels", "layers_per_block"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (math.isfinite(self.scaling_factor) and self.scaling_factor > 0):
            raise ValueError(f"scaling_factor must be finite and > 0, got {self.scaling_factor}")
        self.latent_size(self.image_size)  # checks image_size against the factor

    @property
    def downsampling_factor(self) -> int:
        """f: how many image pixels one latent pixel spans per side (2 ** (levels − 1))."""
        return 2 ** (len(self.block_out_channels) - 1)

    def latent_size(self, image_size: int) -> int:
        """Latent height = width for square images of side `image_size`."""
        f = self.downsampling_factor
        if image_size < f or image_size % f:
            raise ValueError(f"image_size must be a positive multiple of the downsampling factor {f}, got {image_size}")
        return image_size // f

    def to_dict(self) -> dict:
        return asdict(self)


class DiagonalGaussian:
    """q(z|x) = N(mean, diag(exp(logvar))), the encoder's posterior (diffusers: DiagonalGaussianDistribution)."""

    def __init__(self, mean: Tensor, logvar: Tensor):
        if mean.shape != logvar.shape:
            raise ValueError(f"mean and logvar must have the same shape, got {tuple(mean.shape)} and {tuple(logvar.shape)}")
        self.mean = mean
        self.logvar = logvar.clamp(*LOGVAR_RANGE)

    @classmethod
    def from_moments(cls, moments: Tensor) -> "DiagonalGaussian":
        """Split (B, 2C, h, w) moments into mean (first C channels) and log-variance (last C)."""
        mean, logvar = moments.chunk(2, dim=1)
        return cls(mean, logvar)

    @property
    def std(self) -> Tensor:
        return torch.exp(0.5 * self.logvar)

    @property
    def var(self) -> Tensor:
        return torch.exp(self.logvar)

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        """z = μ + σ ε with ε ~ N(0, I) from `generator` (the reparameterisation trick: differentiable in μ, σ)."""
        return self.mean + self.std * randn(self.mean.shape, generator, device=self.mean.device, dtype=self.mean.dtype)

    def mode(self) -> Tensor:
        """The most likely z: the mean (deterministic, needs no generator)."""
        return self.mean

    def kl(self) -> Tensor:
        """KL(q ‖ N(0, I)) per example, in nats: ½ Σ (μ² + σ² − 1 − log σ²) over the latent dimensions."""
        return 0.5 * (self.mean.pow(2) + self.var - 1.0 - self.logvar).flatten(1).sum(1)


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(groups, channels, eps=NORM_EPS)


class ResnetBlock2D(nn.Module):
    """GroupNorm → SiLU → 3×3 conv, twice, plus a skip (a 1×1 conv when the width changes); no time input."""

    def __init__(self, cin: int, cout: int, groups: int):
        super().__init__()
        self.norm1, self.conv1 = _norm(cin, groups), nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = _norm(cout, groups), nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.conv_shortcut is None else self.conv_shortcut(x)) + h


class Attention(nn.Module):
    """Single-head self-attention over the pixels, with a residual connection (the VAE mid-block's)."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.group_norm = _norm(channels, groups)
        self.to_q, self.to_k, self.to_v = (nn.Linear(channels, channels) for _ in range(3))
        self.to_out = nn.Linear(channels, channels)  # diffusers: to_out.0 (to_out.1 is a parameter-free dropout)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        tokens = self.group_norm(x).flatten(2).transpose(1, 2)  # (B, H·W, C): one token per pixel
        out = F.scaled_dot_product_attention(self.to_q(tokens), self.to_k(tokens), self.to_v(tokens))  # softmax(qkᵀ/√C)v
        return x + self.to_out(out).transpose(1, 2).reshape(b, c, h, w)


class Downsample2D(nn.Module):
    """Halve H and W: pad one zero row and column at the bottom/right, then a 3×3 conv with stride 2."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # asymmetric padding, as in diffusers' (and LDM's) VAE


class Upsample2D(nn.Module):
    """Double H and W: nearest-neighbour ×2, then a 3×3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DownEncoderBlock2D(nn.Module):
    """One encoder level: `layers` ResNet blocks, then (except at the last level) a Downsample2D."""

    def __init__(self, cin: int, cout: int, layers: int, groups: int, downsample: bool):
        super().__init__()
        self.resnets = nn.ModuleList(ResnetBlock2D(cin if i == 0 else cout, cout, groups) for i in range(layers))
        self.downsamplers = nn.ModuleList([Downsample2D(cout)] if downsample else [])

    def forward(self, x: Tensor) -> Tensor:
        for layer in (*self.resnets, *self.downsamplers):
            x = layer(x)
        return x


class UpDecoderBlock2D(nn.Module):
    """One decoder level: `layers` ResNet blocks, then (except at the last level) an Upsample2D."""

    def __init__(self, cin: int, cout: int, layers: int, groups: int, upsample: bool):
        super().__init__()
        self.resnets = nn.ModuleList(ResnetBlock2D(cin if i == 0 else cout, cout, groups) for i in range(layers))
        self.upsamplers = nn.ModuleList([Upsample2D(cout)] if upsample else [])

    def forward(self, x: Tensor) -> Tensor:
        for layer in (*self.resnets, *self.upsamplers):
            x = layer(x)
        return x


class UNetMidBlock2D(nn.Module):
    """ResNet block → self-attention (optional) → ResNet block, at the lowest resolution."""

    def __init__(self, channels: int, groups: int, attention: bool):
        super().__init__()
        self.attentions = nn.ModuleList([Attention(channels, groups)] if attention else [])
        self.resnets = nn.ModuleList(ResnetBlock2D(channels, channels, groups) for _ in range(2))

    def forward(self, x: Tensor) -> Tensor:
        x = self.resnets[0](x)
        for attn in self.attentions:
            x = attn(x)
        return self.resnets[1](x)


class Encoder(nn.Module):
    """x (B, C, H, W) → (B, 2·latent_channels, H/f, W/f): conv_in, down levels, mid block, norm → SiLU → conv_out."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        ch, g, last = cfg.block_out_channels, cfg.norm_num_groups, len(cfg.block_out_channels) - 1
        self.conv_in = nn.Conv2d(cfg.in_channels, ch[0], 3, padding=1)
        self.down_blocks = nn.ModuleList(DownEncoderBlock2D(ch[max(i - 1, 0)], ch[i], cfg.layers_per_block, g, i < last)
                                         for i in range(len(ch)))
        self.mid_block = UNetMidBlock2D(ch[-1], g, cfg.mid_attention)
        self.conv_norm_out = _norm(ch[-1], g)
        self.conv_out = nn.Conv2d(ch[-1], 2 * cfg.latent_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv_in(x)
        for block in self.down_blocks:
            x = block(x)
        return self.conv_out(F.silu(self.conv_norm_out(self.mid_block(x))))


class Decoder(nn.Module):
    """z (B, latent_channels, h, w) → (B, C, h·f, w·f): the encoder mirrored, with one more ResNet block per level."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        ch, g, last = cfg.block_out_channels[::-1], cfg.norm_num_groups, len(cfg.block_out_channels) - 1
        self.conv_in = nn.Conv2d(cfg.latent_channels, ch[0], 3, padding=1)
        self.up_blocks = nn.ModuleList(UpDecoderBlock2D(ch[max(i - 1, 0)], ch[i], cfg.layers_per_block + 1, g, i < last)
                                       for i in range(len(ch)))
        self.mid_block = UNetMidBlock2D(ch[0], g, cfg.mid_attention)
        self.conv_norm_out = _norm(ch[-1], g)
        self.conv_out = nn.Conv2d(ch[-1], cfg.in_channels, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        x = self.mid_block(self.conv_in(z))
        for block in self.up_blocks:
            x = block(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class VAE(nn.Module):
    """The autoencoder: `encode(x)` → DiagonalGaussian over latents, `decode(z)` → image, `forward` = both."""

    def __init__(self, config: VAEConfig | None = None):
        super().__init__()
        self.config = config if config is not None else VAEConfig()
        c = self.config.latent_channels
        self.encoder, self.decoder = Encoder(self.config), Decoder(self.config)
        self.quant_conv = nn.Conv2d(2 * c, 2 * c, 1)  # 1×1 convs around the latent, kept for parity with
        self.post_quant_conv = nn.Conv2d(c, c, 1)  # AutoencoderKL (a VQ-GAN heritage; here plain linear maps)

    def _check(self, t: Tensor, channels: int, name: str, multiple: int) -> None:
        if t.ndim != 4 or t.shape[1] != channels:
            raise ValueError(f"{name} must have shape (batch, {channels}, height, width), got {tuple(t.shape)}")
        if t.shape[2] % multiple or t.shape[3] % multiple:
            raise ValueError(f"{name}'s height and width must be multiples of the downsampling factor {multiple}, "
                             f"got {tuple(t.shape[2:])}")

    def encode(self, x: Tensor) -> DiagonalGaussian:
        """The posterior q(z|x) for images x (B, in_channels, H, W), H and W multiples of the factor."""
        self._check(x, self.config.in_channels, "x", self.config.downsampling_factor)
        return DiagonalGaussian.from_moments(self.quant_conv(self.encoder(x)))

    def decode(self, z: Tensor) -> Tensor:
        """Images (B, in_channels, h·f, w·f) from unscaled latents z (B, latent_channels, h, w)."""
        self._check(z, self.config.latent_channels, "z", 1)
        return self.decoder(self.post_quant_conv(z))

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, DiagonalGaussian]:
        """The training pass: (x̂ = decode(z) with z ~ q(z|x) drawn from `generator`, the posterior q(z|x))."""
        posterior = self.encode(x)
        return self.decode(posterior.sample(generator)), posterior
