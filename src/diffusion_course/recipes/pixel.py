"""Recipes for the evaluator and the pixel-space models: unconditional (lesson 04), class- (06) and text-conditional (07).

The class model fine-tunes `uncond`, and the shipped text model fine-tunes the class model (`--init-from class`): the
same U-Net (`UNCOND_UNET`) plus the layers their condition needs, each starting at zero, so training starts from
exactly the model it fine-tunes (`--from-scratch` starts from random weights instead). The text model's encoder is first
taught to read each caption's attributes (`--pretrain-encoder`, each token keeping its own word: `--token-targets`) and
then frozen (`--frozen-encoder`). Every setting is in `configs.py`; docs/checkpoints.md lists the commands.
"""
from __future__ import annotations

import time
from dataclasses import replace

import torch
import torch.nn.functional as F

from ..core.generation import generate
from ..core.guidance import label_null
from ..core.schedules import NoiseSchedule
from ..data.captions import caption_batches
from ..data.shapes import SHAPES, held_out_mask, make_shapes
from ..evaluation.evaluator import Evaluator, EvaluatorConfig
from ..evaluation.perturbations import augment
from ..evaluation.reports import caption_quality, caption_quality_record, evaluate_samples, quality_record
from ..networks.text import TextConditionedModel
from ..networks.unet import UNet, count_parameters
from ..runtime import config_differences, progress, seed_everything
from ..training.checkpoints import load_checkpoint, round_to_float16
from ..training.loop import TrainConfig, batches_from_tensors, train_diffusion
from ..training.optimiser import update
from ..training.state import RunState
from ..training.text_encoder import ENCODER_PRETRAIN_STEPS, text_conditioner
from .configs import (
    CLASS_GUIDANCE,
    CLASS_TRAIN,
    CLASS_UNET,
    EVALUATOR_DATA_SEED,
    EVALUATOR_EPOCHS,
    EVALUATOR_TRAIN_IMAGES,
    TEXT_GUIDANCE,
    TEXT_PHRASE_DROP,
    TEXT_TRAIN,
    TEXT_UNET,
    TRAIN_IMAGES,
    UNCOND_SCHEDULE,
    UNCOND_TRAIN,
    UNCOND_UNET,
)
from .options import RunOptions


def train_evaluator(device, epochs: int = EVALUATOR_EPOCHS, n_train: int = EVALUATOR_TRAIN_IMAGES, seed: int = 0,
                    state: RunState | None = None, robust: bool = True, accuracy_images: int = 10_000):
    """Train the attribute classifier; returns (model, accuracy on the test split). state: save a resumable state
    every `state.every` steps, or resume from it (`RunState`). robust (the shipped `evaluator`): each batch goes through
    `perturbations.augment` (noise, blur, colour shift, JPEG-like blocks; its own generator, seed + 1), so the judge
    reads generated images as a person would rather than by their pixel noise; robust=False trains on clean renders
    only (`evaluator_clean`). accuracy_images: test images scored.

    The evaluator is a measuring instrument, so it must read every colour×shape pair, including the
    held-out pairs the generative models never see: it trains on the test-split *distribution* (all
    pairs) rendered with its own seed (EVALUATOR_DATA_SEED), disjoint from the test images it is scored on.
    """
    g = seed_everything(seed)
    data = make_shapes(n_train, split="test", seed=EVALUATOR_DATA_SEED)
    targets = {k: v for k, v in data.attrs.items() if k != "rotation"}
    model = Evaluator(EvaluatorConfig()).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = epochs * (n_train // 256)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    g_aug = torch.Generator().manual_seed(seed + 1)
    parts = ({"evaluator": model}, {"opt": opt}, {"data": g, "augment": g_aug, "global": torch.default_generator},
             {"sched": sched})
    start, _ = state.restore(*parts) if state else (0, {})
    model.train()
    for step in progress(range(start, steps), desc="evaluator", initial=start, total=steps):
        idx = torch.randint(0, n_train, (256,), generator=g)
        images = augment(data.images[idx], g_aug) if robust else data.images[idx]
        logits = model(images.to(device))
        loss = sum(F.cross_entropy(logits[k], targets[k][idx].to(device)) for k in logits)
        update(opt, loss, sched, step=step)
        if state:
            state.maybe_save(step + 1, *parts)
    return model.eval(), evaluator_accuracy(model, accuracy_images)


def evaluator_accuracy(model: Evaluator, n: int = 10_000) -> dict:
    """Per-attribute accuracy on the test split, overall and on the held-out colour×shape pairs."""
    test = make_shapes(n, split="test", seed=0)
    read = model.read(test.images)
    held = held_out_mask(test.attrs)
    out = {}
    for name in model.config.heads:
        correct = read[name] == test.attrs[name]
        out[name] = float(correct.float().mean())
        out[f"{name}_held_out_pairs"] = float(correct[held].float().mean())
    return out


#: The U-Net settings that decide the shape of every weight a checkpoint has: a conditional U-Net can start from an
#: unconditional one's weights only where these agree (conditioning adds layers, it does not reshape the old ones).
BACKBONE_FIELDS = ("in_channels", "out_channels", "image_size", "patch_size", "channels", "blocks_per_level",
                   "attention_head_dim", "mid_attention", "time_dim", "groups")


#: Layers a checkpoint may have that a network starting from it can leave behind: the class model's label embedding,
#: which a text U-Net starting from the class model has no use for (its condition arrives through cross-attention).
CONDITIONING_LAYERS = ("label.",)


def init_from(net: torch.nn.Module, name: str) -> tuple[list[str], list[str]]:
    """Load a shipped checkpoint's weights into `net` where names match; returns (the parameters left as initialised,
    the checkpoint's conditioning parameters (`CONDITIONING_LAYERS`) left behind). Refuses, naming --from-scratch, a
    U-Net whose backbone (`BACKBONE_FIELDS`) differs from the checkpoint's, and any other weight `net` lacks."""
    source, _ = load_checkpoint(name)
    backbone = lambda config: {k: config.to_dict()[k] for k in BACKBONE_FIELDS}  # noqa: E731
    differ = config_differences(backbone(net.config), backbone(source.config))
    if differ:
        raise ValueError(f"this recipe's U-Net cannot start from {name}'s weights (train it --from-scratch): "
                         + "; ".join(differ))
    state, own = source.state_dict(), net.state_dict().keys()
    dropped = [k for k in state if k.startswith(CONDITIONING_LAYERS) and k not in own]
    missing, unexpected = net.load_state_dict({k: v for k, v in state.items() if k not in dropped}, strict=False)
    if unexpected:
        raise RuntimeError(f"{name} has weights this network lacks: {unexpected[:5]}")
    return missing, dropped


class QualityLog:
    """An `on_sample` callback: judges 1,000 samples of the EMA model during training, and keeps the training
    time (evaluation excluded) at which each measurement was taken — the time-to-quality curve."""

    def __init__(self, schedule: NoiseSchedule, device, prediction: str, sample_fn=None):
        self.schedule, self.device, self.rows = schedule, device, []
        self.sample_fn = sample_fn or (lambda net: generate(net, schedule, 1000, seed=1234, device=device,
                                                            prediction=prediction))
        self.evaluator = load_checkpoint("evaluator", device=device)[0]
        self.start, self.eval_seconds = time.perf_counter(), 0.0

    def __call__(self, step: int, ema_net) -> None:
        t0 = time.perf_counter()
        train_minutes = (t0 - self.start - self.eval_seconds) / 60
        report = evaluate_samples(self.sample_fn(ema_net), self.evaluator)
        self.rows.append({"step": step, "train_minutes": round(train_minutes, 2), "fd_ratio": report.fd_ratio,
                          "recognised": report.recognised, "precision": report.precision, "recall": report.recall})
        print(f"step {step} ({train_minutes:.1f} min): {report}", flush=True)
        ema_net.train(False)
        self.eval_seconds += time.perf_counter() - t0


def _start(options: RunOptions, net: torch.nn.Module) -> dict:
    """Where a conditional recipe's weights start: a shipped checkpoint's (`options.init_from`, "uncond" unless told),
    loaded into `net`, or random ones (--from-scratch). Returns the JSON entries that say so."""
    if options.from_scratch:
        return {"init_from": None, "new_parameters": "all"}
    missing, dropped = init_from(net, options.init_from)
    return {"init_from": options.init_from, "new_parameters": missing,
            **({"left_behind": dropped} if dropped else {})}


def _fit(net, cfg: TrainConfig, next_batch, drop=None, on_sample=None, budget_seconds=None, state=None) -> tuple:
    schedule = NoiseSchedule.from_kind(*UNCOND_SCHEDULE)
    t0 = time.perf_counter()
    result = train_diffusion(net, schedule, next_batch, cfg, drop_condition=drop, on_sample=on_sample,
                             budget_seconds=budget_seconds, state=state)
    cfg = replace(cfg, steps=result.steps)  # what a time budget chose
    eval_seconds = getattr(on_sample, "eval_seconds", 0.0)
    seconds = time.perf_counter() - t0 - eval_seconds
    print(result.summary())
    meta = {"train": cfg.to_dict(), "schedule": list(UNCOND_SCHEDULE), "train_images": TRAIN_IMAGES,
            "parameters": count_parameters(net), "seconds": round(seconds, 1),
            "images_per_second": round(cfg.steps * cfg.batch_size / seconds, 2),
            "final_loss": sum(result.losses[-200:]) / len(result.losses[-200:]), "prediction": cfg.prediction}
    if on_sample is not None:
        meta["quality_during_training"] = on_sample.rows
    meta["stored_as"] = "float16"  # rounded here, before the recipe measures quality
    return round_to_float16(result.ema), schedule, meta


def train_uncond(device, options: RunOptions = RunOptions(), seed: int = 0):
    """The unconditional U-Net; returns ({name: model}, meta)."""
    seed_everything(seed)
    cfg = options.apply(UNCOND_TRAIN, seed)
    images = make_shapes(TRAIN_IMAGES, split="train", seed=0).images
    log = QualityLog(NoiseSchedule.from_kind(*UNCOND_SCHEDULE), device, cfg.prediction) if cfg.sample_every else None
    ema, schedule, meta = _fit(UNet(UNCOND_UNET).to(device), cfg, batches_from_tensors(images, None, cfg.batch_size),
                               on_sample=log, budget_seconds=options.budget_seconds,
                               state=options.run_state("uncond", quality_during_training=log.rows if log else None))
    return {"uncond": ema}, {**meta, "quality": uncond_quality(ema, schedule, device, cfg.prediction)}


def uncond_quality(model, schedule: NoiseSchedule, device, prediction: str) -> dict:
    """The unconditional recipe's `quality` record: 1,000 samples (seed 1234) judged by the shipped evaluator."""
    samples = generate(model, schedule, 1000, seed=1234, device=device, prediction=prediction)
    report = evaluate_samples(samples, load_checkpoint("evaluator", device=device)[0])
    print(report)
    return quality_record(report)


def train_class(device, options: RunOptions = RunOptions(), seed: int = 0):
    """The class-conditional U-Net (label = shape): `uncond`'s weights with a label embedding that starts at zero (so
    training starts from exactly the unconditional model), or random weights with `options.from_scratch`; returns
    ({name: model}, meta)."""
    seed_everything(seed)
    cfg = options.apply(CLASS_TRAIN, seed)
    data = make_shapes(TRAIN_IMAGES, split="train", seed=0)
    net = UNet(CLASS_UNET).to(device)
    start = _start(options, net)
    null = label_null(CLASS_UNET.num_classes)
    drop = lambda cond, mask: torch.where(mask, null(cond.shape[0], cond.device), cond)  # noqa: E731
    ema, schedule, meta = _fit(net, cfg, batches_from_tensors(data.images, data.labels, cfg.batch_size), drop,
                               budget_seconds=options.budget_seconds, state=options.run_state("class"))
    return {"class": ema}, {**meta, **start, "quality": class_quality(ema, schedule, device, cfg.prediction)}


def class_quality(model, schedule: NoiseSchedule, device, prediction: str) -> dict:
    """The class recipe's `quality` record: 1,000 samples at CLASS_GUIDANCE, 125 of each shape (seed 1234)."""
    samples, labels = sample_class_model(model, schedule, 1000, device, prediction, seed=1234)
    report = evaluate_samples(samples, load_checkpoint("evaluator", device=device)[0], targets={"shape": labels})
    print(report)
    return quality_record(report, {"guidance": CLASS_GUIDANCE})


def sample_class_model(model, schedule: NoiseSchedule, n: int, device, prediction: str,
                       guidance: float | None = CLASS_GUIDANCE, seed: int = 1234,
                       **options) -> tuple[torch.Tensor, torch.Tensor]:
    """(n samples, their labels) from a class-conditional model, the labels cycling through the shapes (0, 1, ..., 7,
    0, ...) so every class gets an equal share; guidance=None samples the conditional model unguided. The one sampling
    loop behind the class recipe's quality check, the shipped-model tests and benchmarks/class_guidance; `options`
    (sampler, steps, shape, ...) go to `generate`, whose defaults are the course's evaluation sampler."""
    labels = torch.arange(n) % len(SHAPES)
    samples = generate(model, schedule, n, seed=seed, device=device, prediction=prediction, cond=labels,
                       guidance=guidance, null_cond=label_null(model.config.num_classes), **options)
    return samples, labels


def text_model(options: RunOptions = RunOptions(), attrs=None) -> tuple[TextConditionedModel, dict]:
    """The text recipe's model before training (U-Net, then text encoder, drawing from the global seed in that order),
    and the JSON entries that say how it starts. `options.pretrain_encoder` first teaches the encoder to read the
    attributes of partial captions of `attrs` (the training split's); `options.frozen_encoder` then switches its
    gradients off."""
    unet = UNet(TEXT_UNET)
    start = _start(options, unet)
    conditioner, encoder_start = text_conditioner(attrs, ENCODER_PRETRAIN_STEPS if options.pretrain_encoder else 0,
                                                  options.frozen_encoder, TEXT_PHRASE_DROP, options.token_targets)
    start.update(encoder_start)
    return TextConditionedModel(unet, conditioner), start


def train_text(device, options: RunOptions = RunOptions(), seed: int = 0):
    """The text-conditional U-Net with its text encoder (trained jointly, unless `options` freeze or pretrain it); the
    U-Net starts from `uncond`'s weights (or the class model's: `options.init_from`), its new layers at zero (random
    weights with `options.from_scratch`). The shipped model: fine-tuned from the class model, its encoder pretrained (with
    token targets) and frozen."""
    seed_everything(seed)
    cfg = options.apply(TEXT_TRAIN, seed)
    data = make_shapes(TRAIN_IMAGES, split="train", seed=0)
    model, start = text_model(options, data.attrs)
    model = model.to(device)
    batches = caption_batches(data.images, data.attrs, model.conditioner, cfg.batch_size, TEXT_PHRASE_DROP)
    ema, schedule, meta = _fit(model, cfg, batches, model.drop, budget_seconds=options.budget_seconds,
                               state=options.run_state("text"))
    return ({"text_unet": ema.net, "text_encoder": ema.conditioner.encoder},
            {**meta, **start, "quality": text_quality(ema, schedule, device, cfg.prediction)})


def sample_text_model(model: TextConditionedModel, schedule: NoiseSchedule, prompts: list[str], device, prediction: str,
                      guidance: float = TEXT_GUIDANCE, seed: int = 1234):
    """Images for `prompts` from a pixel text model, guided at `guidance` against the empty prompt: how the text recipe
    samples to judge its model."""
    null = lambda b, dev: model.conditioner.tokenize([""] * b, dev)  # noqa: E731
    return generate(model, schedule, len(prompts), seed=seed, device=device, prediction=prediction,
                    cond=model.conditioner.tokenize(prompts, device="cpu"), guidance=guidance, null_cond=null)


def text_quality(model: TextConditionedModel, schedule: NoiseSchedule, device, prediction: str) -> dict:
    """The text recipe's `quality` record: 500 seen-pair and 500 held-out-pair test captions at TEXT_GUIDANCE."""
    evaluator = load_checkpoint("evaluator", device=device)[0]
    reports = caption_quality(lambda prompts: sample_text_model(model, schedule, prompts, device, prediction), evaluator)
    return caption_quality_record(reports, TEXT_GUIDANCE)
