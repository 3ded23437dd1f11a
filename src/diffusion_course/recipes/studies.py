"""Designs the course measured and did not ship, kept for the appendices and benchmarks that compare against them.

Nothing a lesson or a shipped recipe trains uses these; each is named for what it is, not for when it was used.
"""
from __future__ import annotations

from dataclasses import replace

from ..networks.unet import UNetConfig
from .configs import LATENT_UNET, TEXT_ENCODER

# a wider U-Net run on 2×2 patches (16×16 → 8×8 → 4×4): faster per image on a CPU, worse samples at equal training time
# (appendix "A U-Net that is fast on a CPU"; benchmarks/unet_design)
PATCHED_UNET = UNetConfig(channels=(32, 64, 128), patch_size=2)
# the patched U-Net with cross-attention at 8×8 and 4×4: the text-model recipes of benchmarks/text_init and text_position
PATCHED_TEXT_UNET = replace(PATCHED_UNET, context_dim=TEXT_ENCODER.dim, attention_levels=(1, 2))
# the latent U-Net with attention at 8×8 and in the middle block as well: slower to train, measured in
# benchmarks/latent_init and benchmarks/gpu_session
ATTENTIVE_LATENT_UNET = replace(LATENT_UNET, attention_levels=(0, 1), mid_attention=True)
