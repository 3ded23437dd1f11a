"""Recipes: how each shipped checkpoint is trained, and the settings lessons import.

    configs.py   every shipped model's settings (U-Net, schedule, training): what lessons import
    pixel.py     the evaluator and the pixel models: uncond, class, text
    latent.py    the VAE, the latent U-Net, its decoders and its low-noise expert
    options.py   RunOptions: what the command line may change
    records.py   what a run records about itself
    rejudge.py   each shipped checkpoint's final records measured again with the shipped evaluator
    studies.py   designs measured and not shipped (appendices, benchmarks)
    latent_studies.py  the measurements of appendix a3 (closing the latent gap)

The command line is `python -m diffusion_course.train RECIPE` (diffusion_course/train.py).
"""
from __future__ import annotations

from .latent import (
    load_latent_model,
    sample_latent_model,
    train_latent,
    train_latent_refiner,
    train_vae_decoder,
    train_vae_decoder_wide,
    train_vae_recipe,
)
from .options import RunOptions
from .pixel import sample_class_model, train_class, train_evaluator, train_text, train_uncond

__all__ = ["RECIPES", "RunOptions", "load_latent_model", "sample_class_model", "sample_latent_model", "train_evaluator"]

#: recipe name → function(device, options) -> ({checkpoint name: model}, meta); the evaluator has its own entry (it
#: takes --steps only)
RECIPES = {"uncond": train_uncond, "class": train_class, "text": train_text, "vae": train_vae_recipe,
           "latent": train_latent, "vae_decoder": train_vae_decoder, "latent_refiner": train_latent_refiner,
           "vae_decoder_wide": train_vae_decoder_wide}


def __getattr__(name: str):  # names this module had before it became a package (configs, ...): deprecated
    from .._moved import resolve

    return resolve("recipes", name)
