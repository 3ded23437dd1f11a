"""A better decoder for a VAE whose latents are already in use: fine-tune the decoder only, the encoder frozen.

    x ─encoder (frozen)→ q(z|x) ─z→ post_quant_conv ─decoder (trained)→ x̂

A latent diffusion model learns the distribution of its VAE's latents, so retraining the whole VAE would move the latent
space and invalidate the U-Net. Freezing the encoder keeps every latent, and the scale factor measured on them, exactly as
they were: a fine-tuned decoder is a drop-in replacement under an already trained latent U-Net. Stable Diffusion's
`sd-vae-ft-mse` and `sd-vae-ft-ema` decoders were made this way (Stability AI, 2022).

With the encoder fixed the KL term of the VAE loss is a constant, so the objective is the reconstruction term alone.
Because the posterior q(z|x) no longer changes, it is computed once for the training images; each step then draws
z ~ q(z|x) (the VAE's own training input) and decodes it, which makes a step cost a decoder pass only.
"""
from __future__ import annotations

import copy
import math
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checkpoints import config_differences
from .runtime import progress, randint
from .train import warmup_cosine
from .vae import VAE, Decoder, DiagonalGaussian, VAEConfig

FINAL_LR_FRAC = 0.05  # the fine-tuning's learning rate ends at this fraction of its peak (warm-up, then cosine)
DECODER_MODULES = ("post_quant_conv", "decoder")  # the parameters a decoder fine-tune trains (and a checkpoint holds)
#: VAEConfig fields that shape the decoder's inside only: a decoder may differ from its VAE in these (a wider one, say)
#: and still read the same latents. Every other field (channels, image size, scale factor) must match.
DECODER_ONLY_FIELDS = ("block_out_channels", "layers_per_block", "norm_num_groups", "mid_attention")


class VAEDecoder(nn.Module):
    """The decoding half of a VAE, `post_quant_conv` then `decoder`, under the same parameter names as in `VAE`."""

    def __init__(self, config: VAEConfig | None = None):
        super().__init__()
        self.config = config if config is not None else VAEConfig()
        c = self.config.latent_channels
        self.post_quant_conv = nn.Conv2d(c, c, 1)
        self.decoder = Decoder(self.config)

    def decode(self, z: Tensor) -> Tensor:
        """Images from unscaled latents z (B, latent_channels, h, w), as `VAE.decode`."""
        if z.ndim != 4 or z.shape[1] != self.config.latent_channels:
            raise ValueError(f"z must have shape (batch, {self.config.latent_channels}, height, width), got {tuple(z.shape)}")
        return self.decoder(self.post_quant_conv(z))

    forward = decode


def decoder_of(vae: VAE) -> VAEDecoder:
    """A VAEDecoder holding a copy of `vae`'s decoding weights (under the decoder's own config if `with_decoder` gave
    `vae` a decoder of another width)."""
    out = VAEDecoder(getattr(vae, "decoder_config", vae.config))
    out.load_state_dict({k: v for k, v in vae.state_dict().items() if k.startswith(DECODER_MODULES)})
    return out.to(next(vae.parameters()).device).eval()


def with_decoder(vae: VAE, decoder: VAEDecoder) -> VAE:
    """A copy of `vae` (its encoder, hence its latents) that decodes with (a copy of) `decoder`. The configs must agree
    on the latent space: image and latent channels, image size and the latent scale factor (a decoder is only valid on
    the latent space it was trained on); the decoder's own widths and depth (DECODER_ONLY_FIELDS) may differ, as a
    `widen_decoder` one's do. The copy's `config` stays the VAE's, which describes its encoder and latents; its
    `decoder_config` is the decoder's."""
    mine, theirs = ({k: v for k, v in c.to_dict().items() if k not in DECODER_ONLY_FIELDS}
                    for c in (vae.config, decoder.config))
    diffs = config_differences(mine, theirs)
    if diffs:
        raise ValueError("decoder was trained for a VAE with a different config: " + "; ".join(diffs))
    out = copy.deepcopy(vae)
    for name in DECODER_MODULES:
        setattr(out, name, copy.deepcopy(getattr(decoder, name)).to(next(vae.parameters()).device))
    out.decoder_config = decoder.config  # what `decoder_of` rebuilds it from
    return out.eval()


def widen_decoder(decoder: VAEDecoder, factor: int = 2, seed: int = 0) -> VAEDecoder:
    """A `factor`× wider copy of `decoder` that decodes exactly as it does (up to float rounding): more capacity for a
    fine-tune to use, with nothing learnt thrown away (Net2Net, Chen et al. 2016, with zeros instead of copies).

    Every width and the GroupNorm group count grow by `factor`, so each old group keeps exactly its old channels and the
    new channels form groups of their own. The new channels get fresh random weights (seeded by `seed`) for what flows
    into them, and zeros for what flows from them into old channels, the image included: at the start they change no
    output, and their zero outgoing weights are the first thing the gradient moves. In the mid-block attention the new
    channels' queries start at zero and the old ones are scaled by √factor, so the scores q·k/√C are unchanged."""
    if not isinstance(factor, int) or factor < 1:
        raise ValueError(f"factor must be a positive int, got {factor!r}")
    cfg = decoder.config
    wide_cfg = replace(cfg, block_out_channels=tuple(c * factor for c in cfg.block_out_channels),
                       norm_num_groups=cfg.norm_num_groups * factor)
    with torch.random.fork_rng(devices=[]):  # the new channels' initial weights, from `seed` alone
        torch.manual_seed(seed)
        wide = VAEDecoder(wide_cfg)
    old, state = decoder.state_dict(), {}
    for name, w in wide.state_dict().items():
        o = old[name]
        w = w.to(o.dtype)
        if name.startswith("post_quant_conv"):  # latent to latent: not widened
            state[name] = o.clone()
            continue
        n_out = o.shape[0]
        if o.ndim > 1:  # conv or linear weight (out, in, ...): old outputs read old inputs only
            w[:n_out] = 0.0
            w[:n_out, :o.shape[1]] = o
        else:  # bias or GroupNorm affine: new channels start at zero (a GroupNorm scale at one)
            w[:n_out] = o
            w[n_out:] = 1.0 if "norm" in name and name.endswith("weight") else 0.0
        if ".to_q." in name:  # new queries are zero; old ones scaled so that q·k/√C keeps its value
            w[n_out:] = 0.0
            w[:n_out] *= math.sqrt(factor)
        state[name] = w
    wide.load_state_dict(state)
    return wide.to(next(decoder.parameters()).device).eval()


@torch.no_grad()
def posterior_moments(vae: VAE, images: Tensor, batch_size: int = 500) -> Tensor:
    """q(z|x) of `images` as (N, 2·latent_channels, h, w) moments (means, then log-variances), on vae's device."""
    device, out = next(vae.parameters()).device, []
    for chunk in images.split(batch_size):
        posterior = vae.encode(chunk.to(device))
        out.append(torch.cat([posterior.mean, posterior.logvar], dim=1))
    return torch.cat(out)


def finetune_decoder(vae: VAE, images: Tensor, *, steps: int, batch_size: int = 128, lr: float = 1e-3,
                     warmup: int = 200, generator: torch.Generator | None = None, on_eval=None, eval_every: int = 0,
                     show_progress: bool = True) -> list[float]:
    """Train `vae`'s decoder (and post_quant_conv) in place on the reconstruction error of z ~ q(z|x), the encoder
    frozen; Adam, the learning rate rising linearly over `warmup` steps, then a cosine decay to 5% of `lr`. The warm-up
    matters when fine-tuning: Adam's first steps move every weight by about `lr` whatever its gradient, and two steps at
    1e-3 without it took the shipped decoder from 32.2 to 16.6 dB. Calls `on_eval(step)` every `eval_every` steps and
    after the last one (eval_every = 0: never). Returns the loss (mean squared error per value) of every step."""
    if steps <= 0 or batch_size <= 0 or lr <= 0:
        raise ValueError(f"steps, batch_size and lr must be positive, got {steps}, {batch_size} and {lr}")
    if not 0 <= warmup < steps:
        raise ValueError(f"warmup must be in [0, steps={steps}), got {warmup}")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    device = next(vae.parameters()).device
    vae.eval()
    moments, images = posterior_moments(vae, images), images.to(device)
    params = [p for name in DECODER_MODULES for p in getattr(vae, name).parameters()]
    flags = [p.requires_grad for p in vae.parameters()]  # the caller's, restored at the end
    vae.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    try:
        return _decoder_steps(vae, images, moments, params, steps, batch_size, lr, warmup, g, on_eval, eval_every,
                              show_progress)
    finally:
        vae.eval()
        for p, flag in zip(vae.parameters(), flags):
            p.requires_grad_(flag)


def _decoder_steps(vae, images, moments, params, steps, batch_size, lr, warmup, g, on_eval, eval_every,
                   show_progress) -> list[float]:
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: warmup_cosine(i, steps, warmup, FINAL_LR_FRAC))
    losses: list[Tensor] = []
    for step in progress(range(1, steps + 1), desc="fine-tuning the decoder", disable=not show_progress):
        idx = randint(images.shape[0], (batch_size,), g, device=images.device)
        z = DiagonalGaussian.from_moments(moments[idx]).sample(g)
        vae.decoder.train()
        loss = F.mse_loss(vae.decode(z), images[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.detach())
        if on_eval is not None and eval_every and (step % eval_every == 0 or step == steps):
            vae.eval()
            on_eval(step)
    return torch.stack(losses).float().cpu().tolist()
