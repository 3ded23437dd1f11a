"""Lesson 07's exercises: text-to-image (cross-attention weights, guidance with a negative prompt)."""
from __future__ import annotations

import torch
from torch import Tensor

from .checking import exercise


def _attention_cases():
    g = torch.Generator().manual_seed(7)
    for b, pixels, tokens, d, real in ((1, 4, 6, 8, (3,)), (2, 16, 8, 16, (8, 2)), (3, 9, 5, 4, (1, 5, 3))):
        q, k = torch.randn(b, pixels, d, generator=g), torch.randn(b, tokens, d, generator=g)
        mask = torch.arange(tokens)[None, :] < torch.tensor(real)[:, None]  # True for real tokens, then padding
        yield q, k, mask


def _attention_unmasked(q: Tensor, k: Tensor, mask: Tensor) -> Tensor:
    """The common mistake: padding tokens take part in the softmax."""
    return (q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5).softmax(-1)


@exercise("07", _attention_cases, wrong=_attention_unmasked)
def cross_attention_weights(q: Tensor, k: Tensor, mask: Tensor) -> Tensor:
    """softmax over tokens of q·kᵀ/√d, with the scores of padding tokens (mask False) set to −∞ before the softmax."""
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5  # (B, pixels, tokens)
    scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
    return scores.softmax(-1)


def _guidance_cases():
    g = torch.Generator().manual_seed(7)
    for w in (0.0, 1.0, 3.0, 7.5):
        yield torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g), w


def _guidance_swapped(d_cond: Tensor, d_neg: Tensor, w: float) -> Tensor:
    """The common mistake: steering from the prompt's prediction instead of the negative's."""
    return d_cond + w * (d_cond - d_neg)


@exercise("07", _guidance_cases, wrong=_guidance_swapped)
def negative_guidance(d_cond: Tensor, d_neg: Tensor, w: float) -> Tensor:
    """D(x, n) + w · (D(x, c) − D(x, n)): start from the negative prompt's prediction and move w times towards the prompt's."""
    return d_neg + w * (d_cond - d_neg)
