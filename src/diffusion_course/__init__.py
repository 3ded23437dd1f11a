"""diffusion_course: diffusion models from scratch, the package behind the course notebooks."""
from .analytic import GaussianMixtureDenoiser, gaussian_denoiser, point_set_denoiser
from .denoisers import Denoiser, target_for
from .embeddings import TimeEmbedding, timestep_embedding
from .experts import SwitchAtTimestep
from .clip_text import load_clip_text_encoder
from .image_data import DatasetUnavailable, load_images, try_load_images
from .metrics import floor, mmd_rbf, sliced_wasserstein
from .runtime import (FAST_ENV_VAR, Timer, fast_mode, get_device, pick, progress, randn, recorded_result,
                      seed_everything)
from .samplers import SAMPLERS, Step, ddim, ddpm, dpmpp_2m, euler, get_sampler, heun, prior_sample, sample
from .schedules import SCHEDULE_KINDS, NoiseSchedule
from .shapes import (ATTRIBUTES, BACKGROUNDS, COLOURS, HELD_OUT_PAIRS, POSITIONS, SHAPES, SIZES, ShapeBatch,
                     ShapesDataset, caption_words, held_out_mask, is_held_out, make_shapes, parse_caption,
                     sample_shapes, shape_images)
from .spacing import SPACINGS, karras_sigmas, make_sigmas, sigma_at, timesteps_for
from .toy_data import TOY_DATASETS, make_toy_data
from .toy_models import ToyMLP
from .latent import LatentAdapter, compute_scaling_factor, encode_latents, sample_latent, with_scaling_factor
from .text import (SPECIAL_TOKENS, TextConditionedModel, TextConditioner, TextEncoder, TextEncoderConfig, TextEncoding,
                   Tokenizer, as_cond, drop_captions)
from .training import diffusion_loss, train_toy
from .unet import UNet, UNetConfig, count_parameters
from .vae import LDM_KL_WEIGHT, VAE, DiagonalGaussian, VAEConfig, VAELoss, train_vae, vae_loss
from .vae_decoder import VAEDecoder, decoder_of, finetune_decoder, widen_decoder, with_decoder

__version__ = "0.1.0"

__all__ = [
    "SwitchAtTimestep",
    "GaussianMixtureDenoiser", "gaussian_denoiser", "point_set_denoiser",
    "DatasetUnavailable", "load_images", "try_load_images",
    "ATTRIBUTES", "BACKGROUNDS", "COLOURS", "HELD_OUT_PAIRS", "POSITIONS", "SHAPES", "SIZES", "ShapeBatch",
    "ShapesDataset", "caption_words", "held_out_mask", "is_held_out", "make_shapes", "parse_caption",
    "sample_shapes", "shape_images",
    "UNet", "UNetConfig", "count_parameters",
    "load_clip_text_encoder",
    "LatentAdapter", "compute_scaling_factor", "encode_latents", "sample_latent", "with_scaling_factor",
    "SPECIAL_TOKENS", "TextConditionedModel", "TextConditioner", "TextEncoder", "TextEncoderConfig", "TextEncoding",
    "Tokenizer", "as_cond", "drop_captions",
    "LDM_KL_WEIGHT", "VAE", "DiagonalGaussian", "VAEConfig", "VAELoss", "train_vae", "vae_loss",
    "VAEDecoder", "decoder_of", "finetune_decoder", "widen_decoder", "with_decoder",
    "Denoiser", "target_for",
    "TimeEmbedding", "timestep_embedding",
    "floor", "mmd_rbf", "sliced_wasserstein",
    "FAST_ENV_VAR", "Timer", "fast_mode", "get_device", "pick", "progress", "randn", "recorded_result",
    "seed_everything",
    "SAMPLERS", "Step", "ddim", "ddpm", "dpmpp_2m", "euler", "get_sampler", "heun", "prior_sample", "sample",
    "SCHEDULE_KINDS", "NoiseSchedule",
    "SPACINGS", "karras_sigmas", "make_sigmas", "sigma_at", "timesteps_for",
    "TOY_DATASETS", "make_toy_data",
    "ToyMLP",
    "diffusion_loss", "train_toy",
]
