"""Lesson 03's exercises: the U-Net's parts."""
from __future__ import annotations

import torch
from torch import Tensor

from .checking import exercise


def _attention_cases():
    g = torch.Generator().manual_seed(7)
    for n, m, d in ((4, 4, 8), (6, 3, 16)):
        yield torch.randn(2, n, d, generator=g), torch.randn(2, m, d, generator=g)


def _attention_over_d(q: Tensor, k: Tensor) -> Tensor:
    """A plausible mistake: scaling the scores by 1/d instead of 1/√d."""
    return (q @ k.transpose(-1, -2) / q.shape[-1]).softmax(dim=-1)


@exercise("03", _attention_cases, wrong=_attention_over_d)
def attention_weights(q: Tensor, k: Tensor) -> Tensor:
    """softmax(q kᵀ / √d) over the keys, for q (B, N, d) and k (B, M, d) → (B, N, M)."""
    return (q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5).softmax(dim=-1)


def _up_block_cases():
    yield (16, 32, 64), 1
    yield (32, 64, 128, 256), 2
    yield (8, 24), 1


def _up_blocks_same_width(channels: tuple[int, ...], blocks_per_level: int) -> list[int]:
    """A plausible mistake: giving the first up block of a level that level's width, not the (wider) level below's."""
    skips = [channels[0]]
    for i, c in enumerate(channels):
        skips += [c] * blocks_per_level + ([c] if i < len(channels) - 1 else [])
    return [channels[i] + skips.pop() for i in reversed(range(len(channels))) for _ in range(blocks_per_level + 1)]


@exercise("03", _up_block_cases, wrong=_up_blocks_same_width)
def up_block_inputs(channels: tuple[int, ...], blocks_per_level: int) -> list[int]:
    """Input channels of each up-path residual block, in order: the features coming up plus the skip popped for it."""
    skips = [channels[0]]  # the stem's output
    for i, c in enumerate(channels):
        skips += [c] * blocks_per_level  # each down residual block's output
        if i < len(channels) - 1:
            skips.append(c)  # each downsample's output (a stride-2 conv keeps the width)
    inputs, coming_up = [], channels[-1]  # the middle block's output has the lowest level's width
    for i in reversed(range(len(channels))):
        for _ in range(blocks_per_level + 1):  # the up path has one block more per level than the down path
            inputs.append(coming_up + skips.pop())
            coming_up = channels[i]  # each block outputs this level's width (upsampling keeps it)
    return inputs


def _conv_cases():
    yield 3, 16, 3
    yield 16, 32, 3
    yield 32, 64, 1
    yield 64, 64, 3


def _conv_without_bias(c_in: int, c_out: int, k: int) -> int:
    """A plausible mistake: forgetting the bias."""
    return c_out * c_in * k * k


@exercise("03", _conv_cases, wrong=_conv_without_bias)
def conv_params(c_in: int, c_out: int, k: int) -> int:
    """Parameters of nn.Conv2d(c_in, c_out, k): a k×k filter per (output, input) channel pair, plus one bias per output."""
    return c_out * c_in * k * k + c_out
