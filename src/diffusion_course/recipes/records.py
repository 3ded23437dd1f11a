"""Reading and writing what a recipe records about its run: the machine, how its text encoder started, what it
measured against."""
from __future__ import annotations

import platform

import torch

from ..training.checkpoints import read_manifest


def machine(device: torch.device | str = "cpu") -> str:
    """What a run trained on, for its JSON: the device it used (not merely the best one present), torch and Python."""
    device = torch.device(device)
    if device.type == "cuda":
        dev = torch.cuda.get_device_name(device)
    elif device.type == "cpu":
        dev = f"CPU ({torch.get_num_threads()} threads)"
    else:
        dev = device.type.upper()
    return f"{dev}, torch {torch.__version__}, Python {platform.python_version()}"


def encoder_was_frozen(meta: dict) -> bool:
    """Whether the recipe that wrote a checkpoint's `meta` kept its text encoder frozen (as `text_conditioner` records
    it): to measure training speed the way the model was trained."""
    return meta.get("text_encoder", "").startswith("frozen at ")


def decoder_record_is_current(decoder_meta: dict) -> bool:
    """Whether a `vae_decoder` checkpoint's `latent_model_quality` was measured with the latent U-Net shipped now (its
    recipe records that U-Net's sha256; a record without one cannot be matched, so it is not)."""
    return decoder_meta.get("latent_model_sha256") == read_manifest().get("latent_unet", {}).get("sha256")
