"""The decoding half of a VAE as a network of its own: a fine-tuned or wider decoder swapped in under the same latents.

    x ─encoder (kept)→ q(z|x) ─z→ post_quant_conv ─decoder (swapped)→ x̂

A latent diffusion model learns the distribution of its VAE's latents, so a new decoder is only useful if it reads the
same latent space: `with_decoder` checks that and puts it in; `decoder_of` takes one out; `widen_decoder` makes a wider
copy that starts by decoding exactly as the original (Net2Net). Training one is `training.vae.finetune_decoder`.
"""
from __future__ import annotations

import copy
import math
from dataclasses import replace

import torch
from torch import Tensor, nn

from ..runtime import config_differences
from .vae import VAE, Decoder, VAEConfig

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
