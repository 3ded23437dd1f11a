"""The image training loop: AdamW, warm-up and cosine decay, gradient clipping, EMA, AMP on GPU, checkpoints.

`train_diffusion(net, schedule, next_batch, config)` trains any network that follows the model
contract on batches from `next_batch(generator) -> (x0, cond)`. The shipped models are trained by
`python -m diffusion_course.train RECIPE` (the recipes and their settings are in `recipes/`).
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

import torch
from torch import Tensor, nn

from ..core.loss import diffusion_loss
from ..core.schedules import NoiseSchedule
from ..runtime import config_differences, progress
from .optimiser import update
from .state import RunState


@dataclass
class TrainConfig:
    steps: int = 10_000  # optimiser steps
    batch_size: int = 64  # images per step
    lr: float = 1e-3  # peak AdamW learning rate
    warmup: int = 200  # steps of linear learning-rate warm-up from 0
    min_lr_frac: float = 0.05  # cosine decay ends at lr · min_lr_frac
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    grad_clip: float = 1.0  # clip the global gradient norm to this (0 = off)
    ema_decay: float = 0.999  # EMA of the weights; effective decay min(ema_decay, (1+s)/(10+s)) at step s
    prediction: str = "eps"  # what the network predicts: 'eps', 'x0' or 'v'
    weighting: str = "none"  # loss weighting: 'none' or 'min_snr' (Hang et al. 2023)
    cond_drop: float = 0.0  # probability of replacing an example's condition by the null one (for guidance)
    amp: bool = True  # mixed precision (bfloat16 autocast) when training on CUDA; ignored on CPU
    seed: int = 0  # seeds initial noise, timesteps and batches
    sample_every: int = 0  # call `on_sample(step, ema_net)` every this many steps (0 = never)
    t_max: int | None = None  # train on timesteps t < t_max only (a low-noise expert); None = all of them

    def to_dict(self) -> dict:
        return asdict(self)


class EMA:
    """Exponential moving average of a model's weights (kept as a separate copy of the model)."""

    def __init__(self, net: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(net).eval().requires_grad_(False)
        self.updates = 0

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))  # average over fewer steps early on
        torch._foreach_lerp_(list(self.model.parameters()), [p.detach() for p in net.parameters()], 1 - d)  # one launch
        for e, b in zip(self.model.buffers(), net.buffers()):
            e.copy_(b)


def warmup_cosine(step: int, steps: int, warmup: int, final: float, peak: float = 1.0) -> float:
    """Learning rate after `step` optimiser steps of `steps`: linear warm-up to `peak` over `warmup` steps, then cosine
    decay to `peak · final` at the last step (the U-Nets' `lr_at`; with peak 1, the VAE decoder's multiplier). Written
    as the two schedules were before they shared it, so their runs reproduce to the last bit."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress_ = (step - warmup) / max(1, steps - warmup)
    return peak * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * min(progress_, 1.0))))


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to `lr`, then cosine decay to `lr · min_lr_frac` at the last step."""
    return warmup_cosine(step, cfg.steps, cfg.warmup, cfg.min_lr_frac, peak=cfg.lr)


@dataclass
class TrainResult:
    ema: nn.Module  # the EMA weights: use these for sampling
    losses: list[float] = field(default_factory=list)  # loss per step
    seconds: float = 0.0  # wall-clock training time
    images_per_second: float = 0.0
    steps: int = 0  # optimiser steps in all (cfg.steps, or the number a time budget chose)

    def summary(self) -> str:
        return (f"{len(self.losses)} steps in {self.seconds / 60:.1f} min ({self.images_per_second:.1f} images/s), "
                f"final loss {sum(self.losses[-100:]) / max(1, len(self.losses[-100:])):.4f}")


def train_diffusion(net: nn.Module, schedule: NoiseSchedule, next_batch: Callable, cfg: TrainConfig, *,
                    drop_condition: Callable | None = None, on_sample: Callable | None = None,
                    state: RunState | None = None, show_progress: bool = True,
                    budget_seconds: float | None = None) -> TrainResult:
    """Train `net` in place and return its EMA copy, loss history and speed.

    next_batch(generator) -> (x0, cond) gives a batch on the CPU (cond may be None).
    drop_condition(cond, mask) -> cond replaces the examples where `mask` is True by the null condition.
    state: where to save a resumable state every `state.every` steps, and whether to resume from it (`RunState`);
    a resumed run continues with the same weights, optimiser, EMA, data position and step count, so it ends where an
    uninterrupted one would.
    budget_seconds: train for about this long instead of `cfg.steps`. The number of steps is fixed once, from the
    speed of the first steps of the warm-up (whose learning rates do not depend on the total), so a budgeted run
    is step for step the run `cfg.steps = result.steps` would give: that number is what reproduces it.
    """
    device = next(net.parameters()).device
    g = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ema, losses = EMA(net, cfg.ema_decay), []
    start, cfg = _resume(state, cfg, net, ema, opt, g, losses, budget_seconds is not None)
    use_amp = cfg.amp and device.type == "cuda"
    calibrate = None if start else _calibration_steps(cfg, budget_seconds)  # resumed: the steps are already fixed
    if calibrate:  # run at least to the end of the timing window; the budget then sets the total
        cfg = replace(cfg, steps=max(cfg.steps, calibrate[1] + 1))
    pending: list[Tensor] = []  # losses still on the device: read back in groups, so the GPU is not waited on each step
    net.train()
    t0 = time.perf_counter()
    bar = progress(desc="training", disable=not show_progress, initial=start, total=cfg.steps)
    step = start
    while step < cfg.steps:
        x0, cond = next_batch(g)  # 1. a batch, with the condition dropped for some examples
        x0, cond = x0.to(device, non_blocking=True), _to(cond, device)
        if cfg.cond_drop > 0 and cond is not None:
            cond = drop_condition(cond, (torch.rand(x0.shape[0], generator=g) < cfg.cond_drop).to(device))
        for group in opt.param_groups:  # 2. learning-rate schedule
            group["lr"] = lr_at(step, cfg)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_amp):  # 3. loss
            loss = diffusion_loss(net, x0, schedule, generator=g, prediction=cfg.prediction, cond=cond,
                                  weighting=cfg.weighting, t_max=cfg.t_max)
        update(opt, loss, clip=cfg.grad_clip, params=list(net.parameters()), step=step)  # 4. update, then the EMA
        ema.update(net)
        pending.append(loss.detach())
        step += 1
        bar.update(1)
        checkpoint_due = bool(state and state.every and step % state.every == 0)
        if len(pending) == 25 or step == cfg.steps or checkpoint_due:
            losses.extend(torch.stack(pending).float().cpu().tolist())
            pending.clear()
            if show_progress:
                bar.set_postfix(loss=f"{sum(losses[-100:]) / len(losses[-100:]):.4f}", refresh=False)
        if calibrate and step == calibrate[0]:
            t_first = time.perf_counter()
        if calibrate and step == calibrate[1]:  # the budget fixes the number of steps, once
            per_step = (time.perf_counter() - t_first) / (calibrate[1] - calibrate[0])
            cfg = replace(cfg, steps=max(step + 1, int(budget_seconds / per_step)))
            bar.total = cfg.steps
            print(f"time budget {budget_seconds / 60:.1f} min at {per_step * 1000:.1f} ms/step: {cfg.steps} steps",
                  flush=True)
        if on_sample and cfg.sample_every and step % cfg.sample_every == 0:
            on_sample(step, ema.model)
        if checkpoint_due:
            fixed = not calibrate or step >= calibrate[1]
            state.save(step, {"net": net, "ema": ema.model}, {"opt": opt}, {"data": g, "global": torch.default_generator},
                       extra={"config": cfg.to_dict(), "steps_fixed": fixed, "budgeted": budget_seconds is not None,
                              "ema_updates": ema.updates, "losses": losses})
    bar.close()
    seconds = time.perf_counter() - t0
    net.eval()
    done = cfg.steps - start
    return TrainResult(ema.model, losses, seconds, done * cfg.batch_size / max(seconds, 1e-9), cfg.steps)


def _resume(state: RunState | None, cfg: TrainConfig, net, ema: EMA, opt, g, losses: list,
            budgeted: bool) -> tuple[int, TrainConfig]:
    """(the step to start from, the config to run): from `state` when it resumes (its step count, the one a time
    budget fixed), refusing a state saved with other settings; (0, cfg) otherwise."""
    if state is None or not state.resume:
        return 0, cfg
    saved = state.extra()
    free = {"sample_every"} | ({"steps"} if budgeted and saved["budgeted"] else set())  # a budget fixed the steps
    diffs = config_differences({k: v for k, v in cfg.to_dict().items() if k not in free},
                               {k: v for k, v in saved["config"].items() if k not in free})
    if budgeted != saved["budgeted"]:
        diffs.append(f"time budget: {'given' if budgeted else 'none'} here, {'one' if saved['budgeted'] else 'none'} in the run")
    if diffs:
        raise ValueError(f"cannot resume from {state.path}: it was trained with different settings: " + "; ".join(diffs))
    if not saved["steps_fixed"]:
        raise ValueError(f"cannot resume from {state.path}: the run stopped before its time budget fixed the number of "
                         "steps; start it again without --resume")
    start, extra = state.restore({"net": net, "ema": ema.model}, {"opt": opt}, {"data": g, "global": torch.default_generator})
    ema.updates = extra["ema_updates"]
    losses.extend(extra["losses"])
    return start, replace(cfg, steps=saved["config"]["steps"])


def _calibration_steps(cfg: TrainConfig, budget_seconds: float | None) -> tuple[int, int] | None:
    """(first, last) step of the timing window a time budget is converted at, inside the warm-up; None = no budget."""
    if budget_seconds is None:
        return None
    if budget_seconds <= 0:
        raise ValueError(f"budget_seconds must be positive, got {budget_seconds}")
    last = min(50, cfg.warmup)
    if last < 10:
        raise ValueError("a time budget needs a warm-up of at least 10 steps: the step count is fixed while the "
                         f"learning rate is still warming up (warmup={cfg.warmup})")
    return last // 5, last


def _to(cond, device):
    if cond is None or torch.is_tensor(cond):
        return None if cond is None else cond.to(device)
    return {k: v.to(device) for k, v in cond.items()}


def batches_from_tensors(images: Tensor, labels: Tensor | None, batch_size: int) -> Callable:
    """next_batch for an in-memory tensor of images (and optional labels as the condition)."""
    def next_batch(g: torch.Generator):
        idx = torch.randint(0, images.shape[0], (batch_size,), generator=g)
        return images[idx], (labels[idx] if labels is not None else None)

    return next_batch

