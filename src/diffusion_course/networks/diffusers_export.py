"""Moving the course VAE to and from `diffusers.AutoencoderKL`: its config, the key renaming, and the copy.

Our `VAE` mirrors AutoencoderKL's modules and parameter names, so the mapping is small:

    ours                                   diffusers
    VAEConfig.block_out_channels           block_out_channels, with one DownEncoderBlock2D/UpDecoderBlock2D each
    VAEConfig.mid_attention                mid_block_add_attention
    VAEConfig.image_size                   sample_size
    VAEConfig.scaling_factor               scaling_factor (applied by pipelines, not by the model, in both)
    ...attentions.0.to_out.weight/bias     ...attentions.0.to_out.0.weight/bias
    every other parameter                  the same name

`to_diffusers(vae)` then computes the same function as `vae` (float32, to ~1e-6; tests/test_vae.py).
A VAE whose decoder is wider than its encoder (`vae_decoder.with_decoder`, e.g. the shipped `vae_decoder_wide`) does
not fit one AutoencoderKL config; `decoder_to_diffusers(decoder)` exports its decoding half alone, as diffusers' own
`Decoder` class under AutoencoderKL's key names.
AutoencoderKL options we do not model, and refuse on import: other block types, activations other
than SiLU, no quant/post-quant conv, `shift_factor`, `latents_mean`/`latents_std`, and out_channels
different from in_channels. diffusers is imported only inside these functions.
"""
from __future__ import annotations

from torch import Tensor

from .vae import VAE, VAEConfig

#: (our key fragment, diffusers' key fragment): the only names that differ.
KEY_RENAMES = ((".to_out.", ".to_out.0."),)
_DOWN, _UP = "DownEncoderBlock2D", "UpDecoderBlock2D"


def diffusers_config(config: VAEConfig) -> dict:
    """The keyword arguments of an `AutoencoderKL` with the same architecture as `VAE(config)`."""
    levels = len(config.block_out_channels)
    return dict(
        in_channels=config.in_channels, out_channels=config.in_channels,
        down_block_types=(_DOWN,) * levels, up_block_types=(_UP,) * levels,
        block_out_channels=config.block_out_channels, layers_per_block=config.layers_per_block, act_fn="silu",
        latent_channels=config.latent_channels, norm_num_groups=config.norm_num_groups,
        sample_size=config.image_size, scaling_factor=config.scaling_factor,
        mid_block_add_attention=config.mid_attention, use_quant_conv=True, use_post_quant_conv=True,
    )


def _rename(state: dict[str, Tensor], pairs) -> dict[str, Tensor]:
    out = {}
    for key, value in state.items():
        for old, new in pairs:
            key = key.replace(old, new)
        out[key] = value
    return out


def to_diffusers_state_dict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Our VAE's state_dict with keys renamed to AutoencoderKL's."""
    return _rename(state, KEY_RENAMES)


def from_diffusers_state_dict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """An AutoencoderKL state_dict with keys renamed to our VAE's (the inverse of `to_diffusers_state_dict`)."""
    return _rename(state, [(new, old) for old, new in KEY_RENAMES])


def to_diffusers(vae: VAE):
    """A `diffusers.AutoencoderKL` (eval mode, on vae's device) holding a copy of `vae`'s weights."""
    from diffusers import AutoencoderKL

    decoder_config = getattr(vae, "decoder_config", vae.config)  # set by vae_decoder.with_decoder
    if decoder_config.to_dict() != vae.config.to_dict():
        raise ValueError("this VAE decodes with a decoder of other widths than its encoder's (vae_decoder.with_decoder); "
                         "one AutoencoderKL config has a single block_out_channels for both halves: export the "
                         "encoder's VAE with to_diffusers and the decoder with decoder_to_diffusers")
    param = next(vae.parameters())
    model = AutoencoderKL(**diffusers_config(vae.config))
    model.load_state_dict(to_diffusers_state_dict(vae.state_dict()), strict=True)
    model = model.to(param.device)
    return (model if param.dtype == model.dtype else model.to(param.dtype)).eval()


def decoder_to_diffusers(decoder):
    """The decoding half of a VAE (a `vae_decoder.VAEDecoder`) as diffusers modules holding a copy of its weights:
    `nn.Sequential(post_quant_conv=nn.Conv2d, decoder=diffusers.models.autoencoders.vae.Decoder)` (eval mode, on the
    decoder's device), which maps unscaled latents to images as `decoder.decode` does. Its parameter names are exactly
    those of the decoding half of an AutoencoderKL with the decoder's config, so its state_dict loads into one."""
    from collections import OrderedDict

    from diffusers import AutoencoderKL
    from torch import nn

    whole = AutoencoderKL(**diffusers_config(decoder.config))  # diffusers builds its halves; the encoder is dropped
    model = nn.Sequential(OrderedDict(post_quant_conv=whole.post_quant_conv, decoder=whole.decoder))
    model.load_state_dict(to_diffusers_state_dict(decoder.state_dict()), strict=True)
    param = next(decoder.parameters())
    return model.to(device=param.device, dtype=param.dtype).eval()


def vae_config_from_diffusers(config) -> VAEConfig:
    """The VAEConfig matching an AutoencoderKL config (its `.config` or a dict); unsupported options raise."""
    c = dict(config)
    levels = len(c["block_out_channels"])
    expected = {"down_block_types": [_DOWN] * levels, "up_block_types": [_UP] * levels, "act_fn": "silu",
                "out_channels": c["in_channels"], "use_quant_conv": True, "use_post_quant_conv": True,
                "shift_factor": None, "latents_mean": None, "latents_std": None}
    unsupported = [f"{k}={c.get(k)!r} (supported: {v!r})" for k, v in expected.items()
                   if k in c and (list(c[k]) if isinstance(c[k], (list, tuple)) else c[k]) != v]
    if unsupported:
        raise ValueError("config has AutoencoderKL options the course VAE does not model: " + ", ".join(unsupported))
    sample_size = c.get("sample_size", VAEConfig.image_size)
    return VAEConfig(in_channels=c["in_channels"], latent_channels=c["latent_channels"],
                     block_out_channels=tuple(c["block_out_channels"]), layers_per_block=c["layers_per_block"],
                     norm_num_groups=c["norm_num_groups"], mid_attention=c.get("mid_block_add_attention", True),
                     image_size=sample_size if isinstance(sample_size, int) else sample_size[0],
                     scaling_factor=c["scaling_factor"])


def from_diffusers(model) -> VAE:
    """Our `VAE` (eval mode, on the model's device) holding a copy of an AutoencoderKL's weights."""
    param = next(model.parameters())
    vae = VAE(vae_config_from_diffusers(model.config))
    vae.load_state_dict(from_diffusers_state_dict(model.state_dict()), strict=True)
    return vae.to(device=param.device, dtype=param.dtype).eval()
