"""Pretraining the text encoder on captions alone: the course's small stand-in for a pretrained encoder such as CLIP's.

Before any image model sees it, the encoder learns to read every attribute of a partial caption back from its
features (`pretrain_text_encoder`); the text recipes then freeze it or let it learn with the U-Net (`text_conditioner`).
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.captions import OPTIONAL, partial_captions
from ..data.shapes import VOCABULARIES
from ..networks.text import TextConditioner
from .optimiser import update

#: Steps of `pretrain_text_encoder` in the text recipes' --pretrain-encoder (500 × 256 partial captions, about 30 s on a
#: 2-core CPU; the encoder reads every attribute back by then).
ENCODER_PRETRAIN_STEPS = 500


def pretrain_text_encoder(conditioner, attrs: dict[str, Tensor], steps: int = ENCODER_PRETRAIN_STEPS,
                          batch_size: int = 256, drop_prob: float = 0.25, lr: float = 1e-3, seed: int = 0,
                          token_targets: bool = False) -> dict:
    """Teach a text encoder what each caption says before any image model sees it: from the mean of its token features
    (`TextEncoding.pooled`), linear heads read back every attribute — shape, size, colour, position, background, or "not
    stated" for a phrase left out. Captions are partial captions of `attrs` (use the training split's, so held-out
    pairs stay unseen). The course's small stand-in for a pretrained text encoder such as CLIP's; the heads are thrown
    away. With `token_targets`, one more linear head must also read each real token's own word back from that token's
    feature, so context cannot wash a word out of its own position. Trains `conditioner.encoder` in place; returns
    {"steps", "batch_size", "seconds", "final_loss", "accuracy": per attribute (and "token" with token_targets), over the
    last 50 steps; "token_targets": True when set}."""
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be positive, got {steps} and {batch_size}")
    encoder = conditioner.encoder
    g = torch.Generator().manual_seed(seed)
    heads = torch.nn.ModuleDict({k: torch.nn.Linear(encoder.config.dim, len(VOCABULARIES[k]) + 1)
                                 for k in ("shape", *OPTIONAL)}).to(encoder.position.device)
    params = list(encoder.parameters()) + list(heads.parameters())
    if token_targets:  # built only when asked: the default run draws the same random numbers as before
        word_head = torch.nn.Linear(encoder.config.dim, encoder.config.vocab_size).to(encoder.position.device)
        params += list(word_head.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    n, losses, hits = attrs["shape"].shape[0], [], {k: [] for k in (*heads, *(["token"] if token_targets else []))}
    was_training, t0 = encoder.training, time.perf_counter()
    encoder.train()
    for step in range(steps):
        idx = torch.randint(n, (batch_size,), generator=g)
        batch = {k: v[idx] for k, v in attrs.items()}
        captions, kept = partial_captions(batch, drop_prob, g, return_kept=True)
        t = conditioner.tokenize(captions)
        out = encoder(t["text_ids"], t["text_mask"])
        pooled = out.pooled
        loss = 0.0
        for k, head in heads.items():
            target = torch.where(kept[k], batch[k], len(VOCABULARIES[k])).to(pooled.device)  # last class: not stated
            logits = head(pooled)
            loss = loss + F.cross_entropy(logits, target)
            if step >= steps - 50:
                hits[k].append(float((logits.argmax(1) == target).float().mean()))
        if token_targets:  # each real token reads back its own word
            logits, words = word_head(out.tokens[out.mask]), t["text_ids"].to(pooled.device)[out.mask]
            loss = loss + F.cross_entropy(logits, words)
            if step >= steps - 50:
                hits["token"].append(float((logits.argmax(1) == words).float().mean()))
        update(opt, loss)
        losses.append(float(loss.detach()))
    encoder.train(was_training)
    return {"steps": steps, "batch_size": batch_size, "seconds": round(time.perf_counter() - t0, 1),
            "final_loss": sum(losses[-50:]) / len(losses[-50:]),
            "accuracy": {k: sum(v) / len(v) for k, v in hits.items()}, **({"token_targets": True} if token_targets else {})}


def text_conditioner(attrs: dict[str, Tensor] | None = None, pretrain_steps: int = 0, frozen: bool = False,
                     drop_prob: float = 0.25, token_targets: bool = False) -> tuple[TextConditioner, dict]:
    """A text recipe's conditioner before the U-Net trains (its encoder drawn from the global seed), and the JSON entries
    that say how it starts: first pretrained for `pretrain_steps` on partial captions of `attrs` (0: not at all), then
    frozen (`frozen`) or left to learn with the U-Net; `token_targets`: see `pretrain_text_encoder`."""
    if token_targets and not pretrain_steps:
        raise ValueError("token_targets changes the encoder's pretraining: it needs pretrain_steps > 0")
    conditioner, start, where = TextConditioner(), {}, "its random initialisation"
    if pretrain_steps:
        if attrs is None:
            raise ValueError("pretraining the text encoder needs the training captions' attributes (attrs)")
        start["text_encoder_pretraining"] = pretrain_text_encoder(conditioner, attrs, pretrain_steps, drop_prob=drop_prob,
                                                                  token_targets=token_targets)
        where = "its caption pretraining (training.text_encoder.pretrain_text_encoder)"
    conditioner.encoder.requires_grad_(not frozen)
    start["text_encoder"] = f"frozen at {where}" if frozen else f"trained jointly from {where}"
    return conditioner, start
