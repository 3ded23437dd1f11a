"""Probes of a text-conditional model: which words its denoiser and its text encoder respond to (lesson 07)."""
from __future__ import annotations

import torch

from ..data.shapes import SHAPES

#: Word swaps of notebook 07's probe: (caption, the same caption with one part changed).
WORD_SWAPS = {"shape": ("a large red circle", "a large red square"),
              "colour": ("a large red circle", "a large blue circle"),
              "size": ("a large red circle", "a small red circle"),
              "position": ("a large red circle in the top left", "a large red circle in the bottom right"),
              "background": ("a large red circle on a dark background", "a large red circle on a light background"),
              "whole caption": ("a large red circle", "")}


PROBE_SIGMAS = (0.5, 2.0, 8.0, 30.0)


@torch.no_grad()
def word_sensitivity(denoiser, conditioner, swaps: dict[str, tuple[str, str]] = WORD_SWAPS,
                     sigmas=PROBE_SIGMAS, n: int = 32, seed: int = 0, image_shape=(3, 32, 32)) -> dict[str, list[float]]:
    """Which words a text-conditional model listens to: for each (caption a, caption b), the root-mean-square change of
    the denoiser's x̂₀ between the two captions on the same n noisy inputs, at each noise level σ.

    A word the model uses moves x̂₀; one it ignores leaves it where it was (0 for a model that ignores its condition).
    The inputs are pure noise of variance 1 + σ² (what the sampler sees at σ when the image itself is unknown).
    """
    device = next(conditioner.parameters()).device
    g = torch.Generator().manual_seed(seed)
    noise = [torch.randn(n, *image_shape, generator=g) * (1 + s**2) ** 0.5 for s in sigmas]
    out = {}
    for name, (a, b) in swaps.items():
        row = []
        for s, x in zip(sigmas, noise):
            xa = denoiser(x.to(device), torch.tensor(s), cond=conditioner.tokenize([a] * n, device))
            xb = denoiser(x.to(device), torch.tensor(s), cond=conditioner.tokenize([b] * n, device))
            row.append(float((xa - xb).pow(2).mean().sqrt()))
        out[name] = row
    return out


@torch.no_grad()
def context_sensitivity(conditioner, swaps: dict[str, tuple[str, str]] = WORD_SWAPS) -> dict[str, float]:
    """The same probe one step earlier, on the text encoder alone: for each (caption a, caption b), how much the
    per-token features the U-Net attends to change, relative to their size: ‖T(a) − T(b)‖ / ‖T(a)‖ (Frobenius norms over
    tokens × channels; padding is zero). 0: the encoder erased the difference, so no U-Net can act on it."""
    out = {}
    for name, (a, b) in swaps.items():
        tokens = conditioner.encode([a, b]).tokens
        out[name] = float((tokens[0] - tokens[1]).norm() / tokens[0].norm())
    return out


COLOUR_IN_CONTEXT = [f"a large blue {shape} in the centre" for shape in SHAPES]  # "blue" before each shape


COLOUR_TOKEN = 3  # its position among the tokens: [BOS] a large *blue*


@torch.no_grad()
def word_consistency(conditioner, captions: list[str] = COLOUR_IN_CONTEXT, index: int = COLOUR_TOKEN) -> float:
    """How much one word's token feature stays itself across contexts: the mean cosine similarity, over all pairs of
    `captions`, of the token features at `index` (by default the colour word "blue" before each of the 8 shapes). 1: the
    word reads the same whatever follows; low: the context rewrites it — and the U-Net attends to these features."""
    if len(captions) < 2:
        raise ValueError("word_consistency compares a word across at least two captions")
    t = torch.nn.functional.normalize(conditioner.encode(captions).tokens[:, index], dim=-1)
    n = len(captions)
    return float(((t @ t.T).sum() - n) / (n * n - n))
