"""diffusion_course: diffusion models from scratch, the package behind the course notebooks.

The package in layers, each importing only from the ones below it:

    recipes/      how each shipped checkpoint is trained, and the settings lessons import    (+ train.py, rejudge.py: CLIs)
    notebook/     plotting, widgets, exercise checkers — for the notebooks only
    training/     the training loops and checkpoints
    evaluation/   the evaluator network, distances between sample sets, reports
    networks/     U-Net, text encoder, VAE, latent adapter, toy MLP
    data/         the shapes dataset, captions, toy data, standard datasets from disk
    core/         schedules, spacing, denoisers, samplers, guidance, loss, generate — diffusion itself
    runtime.py    seeds, device, the fast/full switch

Below are the names a learner uses; everything else is imported from its module.
"""
from . import _moved
from .core.analytic import GaussianMixtureDenoiser
from .core.denoisers import Denoiser
from .core.experts import SwitchAtTimestep
from .core.generation import generate
from .core.guidance import ClassifierFreeGuidance
from .core.loss import diffusion_loss
from .core.samplers import SAMPLERS, ddim, ddpm, dpmpp_2m, euler, get_sampler, heun, prior_sample, sample
from .core.schedules import NoiseSchedule
from .core.spacing import make_sigmas
from .data.shapes import COLOURS, SHAPES, SIZES, ShapesDataset, make_shapes
from .data.standard_datasets import load_images
from .data.toy import TOY_DATASETS, make_toy_data
from .evaluation.distances import frechet_distance, mmd_rbf, real_data_floor, sliced_wasserstein
from .evaluation.reports import evaluate_samples
from .networks.clip_text import load_clip_text_encoder
from .networks.embeddings import TimeEmbedding
from .networks.latent import LatentAdapter
from .networks.text import TextConditionedModel, TextConditioner
from .networks.toy_mlp import ToyMLP
from .networks.unet import UNet, UNetConfig, count_parameters
from .networks.vae import VAE, VAEConfig
from .runtime import Timer, fast_mode, get_device, pick, progress, recorded_result, seed_everything
from .training.checkpoints import load_checkpoint
from .training.loop import TrainConfig, train_diffusion
from .training.toy import train_toy

__version__ = "0.1.0"

__all__ = [
    # runtime
    "seed_everything", "get_device", "fast_mode", "pick", "Timer", "progress", "recorded_result",
    # core
    "NoiseSchedule", "make_sigmas", "Denoiser", "ddpm", "ddim", "euler", "heun", "dpmpp_2m", "SAMPLERS",
    "get_sampler", "sample", "prior_sample", "ClassifierFreeGuidance", "SwitchAtTimestep", "diffusion_loss", "generate",
    "GaussianMixtureDenoiser",
    # data
    "make_shapes", "ShapesDataset", "SHAPES", "COLOURS", "SIZES", "make_toy_data", "TOY_DATASETS", "load_images",
    # networks
    "UNet", "UNetConfig", "count_parameters", "TimeEmbedding", "ToyMLP", "TextConditioner", "TextConditionedModel",
    "VAE", "VAEConfig", "LatentAdapter", "load_clip_text_encoder",
    # training
    "TrainConfig", "train_diffusion", "train_toy", "load_checkpoint",
    # evaluation
    "evaluate_samples", "frechet_distance", "real_data_floor", "sliced_wasserstein", "mmd_rbf",
]

_moved.install()


def __getattr__(name: str):  # names the package exported before it was layered: deprecated, pointing to their module
    return _moved.resolve("", name)
