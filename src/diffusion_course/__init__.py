"""diffusion_course: diffusion models from scratch, the package behind the course notebooks."""
from .denoisers import Denoiser, target_for
from .embeddings import TimeEmbedding, timestep_embedding
from .metrics import floor, mmd_rbf, sliced_wasserstein
from .runtime import FAST_ENV_VAR, Timer, fast_mode, get_device, pick, progress, randn, seed_everything
from .samplers import SAMPLERS, Step, ddim, ddpm, dpmpp_2m, euler, get_sampler, heun, prior_sample, sample
from .schedules import SCHEDULE_KINDS, NoiseSchedule
from .spacing import SPACINGS, karras_sigmas, make_sigmas, sigma_at, timesteps_for
from .toy_data import TOY_DATASETS, make_toy_data
from .toy_models import ToyMLP
from .training import diffusion_loss, train_toy

__version__ = "0.1.0"

__all__ = [
    "Denoiser", "target_for",
    "TimeEmbedding", "timestep_embedding",
    "floor", "mmd_rbf", "sliced_wasserstein",
    "FAST_ENV_VAR", "Timer", "fast_mode", "get_device", "pick", "progress", "randn", "seed_everything",
    "SAMPLERS", "Step", "ddim", "ddpm", "dpmpp_2m", "euler", "get_sampler", "heun", "prior_sample", "sample",
    "SCHEDULE_KINDS", "NoiseSchedule",
    "SPACINGS", "karras_sigmas", "make_sigmas", "sigma_at", "timesteps_for",
    "TOY_DATASETS", "make_toy_data",
    "ToyMLP",
    "diffusion_loss", "train_toy",
]
