"""The settings of every shipped checkpoint: the configs lessons import and the recipes train with.

Each recipe (`python -m diffusion_course.train NAME`) reads its settings here; without options it reproduces the
shipped checkpoint (docs/checkpoints.md lists the commands). Lessons import the same objects, so a lesson's inline
model is the shipped model's architecture by construction.
"""
from __future__ import annotations

from dataclasses import replace

from ..data.shapes import SHAPES
from ..networks.text import TextEncoderConfig
from ..networks.unet import UNetConfig
from ..networks.vae import VAEConfig
from ..training.loop import TrainConfig
from ..training.vae import LDM_KL_WEIGHT

TRAIN_IMAGES = 50_000  # shapes train-split images (seed 0) that every generative recipe trains on

# ---------------------------------------------------------------- the evaluator (the course's measuring instrument)
EVALUATOR_TRAIN_IMAGES, EVALUATOR_EPOCHS = 50_000, 8  # the evaluator trains through image defects: longer to learn
CLEAN_EVALUATOR_EPOCHS = 4  # evaluator_clean: the same network on clean renders only, kept for comparison
EVALUATOR_DATA_SEED = 1  # its training images: the test-split distribution (all pairs), a seed nothing else uses

# ---------------------------------------------------------------- pixel models (lessons 04, 06, 07)
UNCOND_SCHEDULE = ("cosine", 1000)  # (kind, T) for NoiseSchedule.from_kind; every pixel model uses it
UNCOND_UNET = UNetConfig(channels=(16, 32, 64))  # lesson 03's U-Net at full 32×32 resolution
UNCOND_TRAIN = TrainConfig(steps=11793, batch_size=64, lr=2e-3, warmup=200, prediction="v", weighting="min_snr",
                           sample_every=2000)  # sample_every: judge 1,000 samples every 2,000 steps (time to quality)
CLASS_UNET = replace(UNCOND_UNET, num_classes=len(SHAPES))  # label id len(SHAPES) = "no label"
CLASS_TRAIN = replace(UNCOND_TRAIN, steps=19448, lr=1e-3, warmup=100, cond_drop=0.15, sample_every=0)
CLASS_GUIDANCE = 3.0  # guidance scale of the recipe's own quality check (lesson 06 sweeps it)
TEXT_ENCODER = TextEncoderConfig()
# the unconditional U-Net + cross-attention at 16×16 and 8×8 (each pixel's position added to its query) + the pooled
# caption added to the time embedding
TEXT_UNET = replace(UNCOND_UNET, context_dim=TEXT_ENCODER.dim, attention_levels=(1, 2), attention_position=True,
                    context_pooling=True)
TEXT_PHRASE_DROP = 0.25  # each optional phrase (size, colour, position, background) left out of 1 caption in 4
# weighting "none": with min-SNR weighting the fine-tuned text model placed shapes at chance (appendix: how the text
# model was trained); min-SNR all but silences the high-noise steps, where place and colour are decided
TEXT_TRAIN = replace(UNCOND_TRAIN, steps=9615, lr=1e-3, warmup=100, cond_drop=0.15, sample_every=0, weighting="none")
TEXT_GUIDANCE = 3.0

# ---------------------------------------------------------------- latent models (lesson 08)
VAE_CONFIG = VAEConfig(block_out_channels=(16, 32, 64), latent_channels=4)  # f = 4: 32×32×3 → 8×8×4
VAE_STEPS, VAE_BATCH, VAE_LR, VAE_KL_WEIGHT = 2000, 64, 1e-3, LDM_KL_WEIGHT
LATENT_SCHEDULE = ("cosine", 1000)
# widths (32, 64) with self- and cross-attention at 4×4 only, where it is cheap: chosen by measured training speed
# against the pixel text model (docs/benchmarks.md, "Latent vs pixel diffusion")
LATENT_UNET = UNetConfig(in_channels=4, out_channels=4, image_size=8, channels=(32, 64), attention_levels=(1,),
                         mid_attention=False, context_dim=64)
LATENT_TRAIN = TrainConfig(steps=13164, batch_size=512, lr=1e-3, warmup=200, prediction="v", weighting="min_snr",
                           cond_drop=0.15, sample_every=2000)
LATENT_GUIDANCE = 3.0
LATENT_PHRASE_DROP = 0.25  # as the pixel text model: each optional phrase left out of 1 caption in 4
# the decoder fine-tune (training.vae.finetune_decoder): the VAE's decoder only, its encoder frozen
DECODER_STEPS, DECODER_BATCH, DECODER_LR, DECODER_WARMUP, DECODER_EVAL_EVERY = 4000, 128, 1e-3, 200, 1000
# the wider decoder: vae_decoder widened 2× (networks.vae_decoder.widen_decoder starts it as an exact copy), then
# fine-tuned in two cosine cycles; the second (`--continue-from` the first) draws its batches from seed + 1
WIDE_DECODER_FACTOR, WIDE_DECODER_STEPS, WIDE_DECODER_LR, WIDE_DECODER_EVAL_EVERY = 2, 2000, 5e-4, 500
WIDE_DECODER_MORE_STEPS, WIDE_DECODER_MORE_LR, WIDE_DECODER_MORE_WARMUP = 2000, 3e-4, 100
# the low-noise expert (core.experts; eDiff-I's expert denoisers, SDXL's refiner): the latent U-Net grown
# (networks.unet.grow: self- and cross-attention at 8×8 too, position in attention, the pooled caption; every new layer
# starts at zero) and fine-tuned on timesteps t < REFINER_T_MAX only (σ < 0.52), without loss weighting (min-SNR all but
# silences those steps); sampling hands it every step below the switch
REFINER_T_MAX = 300
REFINER_UNET = replace(LATENT_UNET, attention_levels=(0, 1), attention_position=True, context_pooling=True)
REFINER_TRAIN = replace(LATENT_TRAIN, steps=5400, lr=3e-4, warmup=100, weighting="none", sample_every=1800,
                        t_max=REFINER_T_MAX)
