"""Captions for the text-to-image models: partial captions for training, and evaluation prompt sets.

A full caption states every attribute: "a small red star in the top left on a dark background".
Training also on *partial* captions ("a red star", "a star on a light background") teaches the
model what an unstated attribute means — "any" — which is what makes short prompts and negative
prompts ("not red") work.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .shapes import BACKGROUNDS, COLOURS, SHAPES, SIZES, held_out_mask, make_shapes

#: Phrases that may be left out of a caption, in caption order (the shape is always stated).
OPTIONAL = ("size", "colour", "position", "background")
_POSITION_PHRASES = ("in the top left", "at the top", "in the top right", "on the left", "in the centre",
                     "on the right", "in the bottom left", "at the bottom", "in the bottom right")


def caption(shape: int, size: int | None = None, colour: int | None = None, position: int | None = None,
            background: int | None = None) -> str:
    """A caption stating only the attributes given (ids into SHAPES, SIZES, ...): caption(4, colour=0) → "a red star"."""
    words = ["a"]
    if size is not None:
        words.append(SIZES[size])
    if colour is not None:
        words.append(COLOURS[colour])
    words.append(SHAPES[shape])
    if position is not None:
        words.append(_POSITION_PHRASES[position])
    if background is not None:
        words += ["on a", BACKGROUNDS[background], "background"]
    return " ".join(words)


def partial_captions(attrs: dict[str, Tensor], drop_prob: float, generator: torch.Generator,
                     return_kept: bool = False):
    """Captions for a batch where each optional attribute is left out with probability `drop_prob`.
    With `return_kept`, also {attribute: bool tensor, True where the caption states it} (the shape always)."""
    if not 0 <= drop_prob <= 1:
        raise ValueError(f"drop_prob must lie in [0, 1], got {drop_prob}")
    n = attrs["shape"].shape[0]
    keep = {k: (torch.rand(n, generator=generator) >= drop_prob).tolist() for k in OPTIONAL}
    captions = [caption(int(attrs["shape"][i]), **{k: int(attrs[k][i]) if keep[k][i] else None for k in OPTIONAL})
                for i in range(n)]
    if not return_kept:
        return captions
    return captions, {"shape": torch.ones(n, dtype=torch.bool), **{k: torch.tensor(v) for k, v in keep.items()}}


def evaluation_prompts(n: int, held_out: bool, seed: int = 0):
    """n full captions from the test split, all with (held_out=True) or all without a held-out colour×shape pair.

    Returns (captions, attrs) so adherence can be checked attribute by attribute.
    """
    batch = make_shapes(max(4 * n, 2000) if not held_out else max(20 * n, 20_000), split="test", seed=seed)
    idx = held_out_mask(batch.attrs).nonzero().flatten() if held_out else (~held_out_mask(batch.attrs)).nonzero().flatten()
    if idx.numel() < n:
        raise ValueError(f"only {idx.numel()} test images match; ask for fewer than {n}")
    idx = idx[:n]
    return [batch.captions[i] for i in idx.tolist()], {k: v[idx] for k, v in batch.attrs.items()}


def caption_batches(data: Tensor, attrs: dict[str, Tensor], conditioner, batch_size: int, drop_prob: float):
    """next_batch for text-conditional training: random rows of `data` (images or latents) with the token ids
    of partial captions of their attributes (each optional phrase left out with probability `drop_prob`)."""
    def next_batch(g: torch.Generator):
        idx = torch.randint(0, data.shape[0], (batch_size,), generator=g)
        captions = partial_captions({k: v[idx] for k, v in attrs.items()}, drop_prob, g)
        return data[idx], conditioner.tokenize(captions, device="cpu")

    return next_batch
