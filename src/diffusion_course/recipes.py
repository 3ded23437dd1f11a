"""Recipes for every shipped checkpoint, and the command line that reproduces them.

    python -m diffusion_course.train evaluator     # the attribute classifier used by all metrics
    python -m diffusion_course.train uncond        # the unconditional pixel-space U-Net (notebook 04)

Each recipe fixes its seed, data and settings, trains, measures quality with the metrics module,
and writes safetensors + JSON (with the command, the training time and the measured numbers) into
the package's weights/ folder (or --out), updating the manifest's sha256.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from .checkpoints import WEIGHTS_DIR, load_checkpoint, save_checkpoint
from .denoisers import Denoiser
from .evaluation import evaluate_samples
from .evaluator import Evaluator, EvaluatorConfig
from .runtime import get_device, progress, seed_everything
from .samplers import prior_sample, sample
from .schedules import NoiseSchedule
from .shapes import held_out_mask, make_shapes
from .spacing import make_sigmas
from .train import TrainConfig, batches_from_tensors, train_diffusion
from .unet import UNet, UNetConfig, count_parameters

# ---------------------------------------------------------------- settings of the shipped models
EVALUATOR_TRAIN_IMAGES = 50_000
EVALUATOR_EPOCHS = 4
EVALUATOR_DATA_SEED = 1  # the evaluator's training images: test-split distribution, a seed nothing else uses
UNCOND_UNET = UNetConfig()
UNCOND_TRAIN = TrainConfig(steps=8000, batch_size=64, lr=2e-3, warmup=200, prediction="v", weighting="min_snr")
UNCOND_SCHEDULE = ("cosine", 1000)
UNCOND_TRAIN_IMAGES = 50_000
#: Sampler settings used to measure the shipped pixel models (notebook 05 compares the alternatives).
EVAL_SAMPLER, EVAL_STEPS, EVAL_SPACING = "dpmpp_2m", 20, "karras"


def machine() -> str:
    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({torch.get_num_threads()} threads)"
    return f"{dev}, torch {torch.__version__}, Python {platform.python_version()}"


def train_evaluator(device, epochs: int = EVALUATOR_EPOCHS, n_train: int = EVALUATOR_TRAIN_IMAGES, seed: int = 0):
    """Train the attribute classifier; returns (model, accuracy on the test split).

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
    model.train()
    for step in progress(range(steps), desc="evaluator"):
        idx = torch.randint(0, n_train, (256,), generator=g)
        logits = model(data.images[idx].to(device))
        loss = sum(F.cross_entropy(logits[k], targets[k][idx].to(device)) for k in logits)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return model.eval(), evaluator_accuracy(model)


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


def generate(net, schedule, n: int, seed: int, device, cond=None, batch: int = 250,
             sampler: str = EVAL_SAMPLER, steps: int = EVAL_STEPS, spacing: str = EVAL_SPACING, prediction="v"):
    """n samples from a pixel-space model with the evaluation sampler, in batches; returns CPU images."""
    sigmas = make_sigmas(schedule, steps, spacing)
    denoiser = Denoiser(net, schedule, prediction=prediction, clip=1.0)
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, n, batch):
        b = min(batch, n - i)
        x = prior_sample((b, 3, 32, 32), float(sigmas[0]), g, device=device)
        c = None if cond is None else cond[i:i + b].to(device)
        out.append(sample(sampler, denoiser, x, sigmas, cond=c, generator=g).cpu())
    return torch.cat(out).clamp(-1, 1)


def train_uncond(device, steps: int | None = None, seed: int = 0):
    """Train the unconditional U-Net; returns (ema model, meta dict with speed and quality)."""
    seed_everything(seed)
    cfg = TrainConfig(**{**UNCOND_TRAIN.to_dict(), "steps": steps or UNCOND_TRAIN.steps, "seed": seed})
    schedule = NoiseSchedule.from_kind(*UNCOND_SCHEDULE)
    images = make_shapes(UNCOND_TRAIN_IMAGES, split="train", seed=0).images
    net = UNet(UNCOND_UNET).to(device)
    result = train_diffusion(net, schedule, batches_from_tensors(images, None, cfg.batch_size), cfg)
    evaluator, _ = load_checkpoint("evaluator", device=device)
    samples = generate(result.ema, schedule, 1000, seed=1234, device=device, prediction=cfg.prediction)
    report = evaluate_samples(samples, evaluator)
    meta = {"train": cfg.to_dict(), "schedule": list(UNCOND_SCHEDULE), "train_images": UNCOND_TRAIN_IMAGES,
            "parameters": count_parameters(net), "seconds": round(result.seconds, 1),
            "images_per_second": round(result.images_per_second, 2), "final_loss": sum(result.losses[-200:]) / 200,
            "quality": {"samples": report.n, "sampler": f"{EVAL_SAMPLER}, {EVAL_STEPS} steps, {EVAL_SPACING}",
                        "fd": report.fd, "fd_floor": report.fd_floor, "fd_ratio": report.fd_ratio,
                        "precision": report.precision, "recall": report.recall, "recognised": report.recognised}}
    print(result.summary())
    print(report)
    return result.ema, meta


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m diffusion_course.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe", choices=["evaluator", "uncond"])
    p.add_argument("--steps", type=int, default=None, help="override the number of training steps (testing only)")
    p.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="folder for the checkpoint (default: shipped weights)")
    p.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
    args = p.parse_args(argv)
    device = get_device(args.device)
    command = "python -m diffusion_course.train " + " ".join(sys.argv[1:] if argv is None else argv)
    t0 = time.perf_counter()
    if args.recipe == "evaluator":
        model, acc = train_evaluator(device, epochs=args.steps or EVALUATOR_EPOCHS)
        meta, kind, config = {"test_accuracy": acc}, "evaluator", model.config.to_dict()
        print("test accuracy:", {k: round(v, 4) for k, v in acc.items()})
    else:
        model, meta = train_uncond(device, steps=args.steps)
        kind, config = "unet", model.config.to_dict()
    meta.update({"command": command, "total_seconds": round(time.perf_counter() - t0, 1), "machine": machine(),
                 "date": time.strftime("%Y-%m-%d")})
    entry = save_checkpoint(args.recipe, model, kind, config, meta, directory=args.out)
    print(f"saved {args.out / args.recipe}.safetensors ({entry['bytes'] / 1e6:.2f} MB, sha256 {entry['sha256'][:12]}…)")


if __name__ == "__main__":
    main()
