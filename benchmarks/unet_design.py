"""Which U-Net design learns the shapes fastest on a CPU? Each candidate trains from scratch for the
same wall-clock budget, then 1,000 samples are judged by the evaluator.

    python -m benchmarks.unet_design [--minutes 10] [--only NAME ...]

Writes the "U-Net design" section of docs/benchmarks.md (quoted by notebook 03).
"""
from __future__ import annotations

import argparse
import time

import torch

import diffusion_course as dc
from diffusion_course.core.generation import generate
from diffusion_course.evaluation.reports import evaluate_samples
from diffusion_course.recipes.configs import UNCOND_SCHEDULE, UNCOND_TRAIN
from diffusion_course.training.checkpoints import load_checkpoint
from diffusion_course.training.loop import (
    TrainConfig,
    batches_from_tensors,
    train_diffusion,
)

from .record import record

CANDIDATES = {
    "plain (32,64,128)": dc.UNetConfig(channels=(32, 64, 128)),
    "plain (16,32,64)": dc.UNetConfig(channels=(16, 32, 64)),
    "patch 2, (32,64,128)": dc.UNetConfig(channels=(32, 64, 128), patch_size=2),
    "patch 2, (64,128,128)": dc.UNetConfig(channels=(64, 128, 128), patch_size=2),
}


def measure_train_speed(cfg: dc.UNetConfig, batch: int) -> float:
    net = dc.UNet(cfg)
    opt = torch.optim.AdamW(net.parameters(), 1e-4)
    x, t = torch.randn(batch, 3, 32, 32), torch.rand(batch) * 999
    times = []
    for _ in range(4):
        start = time.perf_counter()
        loss = net(x, t).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return batch / sorted(times[1:])[1]


def run(name: str, cfg: dc.UNetConfig, minutes: float, images: torch.Tensor, evaluator) -> dict:
    base = UNCOND_TRAIN
    ips = measure_train_speed(cfg, base.batch_size)
    steps = max(50, int(minutes * 60 * ips / base.batch_size))
    tc = TrainConfig(**{**base.to_dict(), "steps": steps, "warmup": min(base.warmup, steps // 10)})
    torch.manual_seed(0)
    net = dc.UNet(cfg)
    schedule = dc.NoiseSchedule.from_kind(*UNCOND_SCHEDULE)
    res = train_diffusion(net, schedule, batches_from_tensors(images, None, tc.batch_size), tc, show_progress=False)
    start = time.perf_counter()
    samples = generate(res.ema, schedule, 1000, seed=1234, device=torch.device("cpu"), prediction=tc.prediction)
    sample_ips = 1000 / (time.perf_counter() - start)
    rep = evaluate_samples(samples, evaluator)
    print(f"{name}: {res.summary()} | {rep}", flush=True)
    return dict(name=name, params=dc.count_parameters(net), steps=steps, minutes=res.seconds / 60,
                train_ips=res.images_per_second, sample_ips=sample_ips, report=rep)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--only", nargs="*", default=None)
    args = p.parse_args()
    evaluator, _ = load_checkpoint("evaluator")
    images = dc.make_shapes(50_000, split="train", seed=0).images
    rows = [run(n, c, args.minutes, images, evaluator) for n, c in CANDIDATES.items() if not args.only or n in args.only]
    lines = ["| design | params | steps in budget | train img/s | samples/s (20 NFE) | FD / floor | recognised | precision | recall |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        rep = r["report"]
        lines.append(f"| {r['name']} | {r['params'] / 1e6:.2f}M | {r['steps']} | {r['train_ips']:.1f} | {r['sample_ips']:.0f} | "
                     f"{rep.fd_ratio:.2f} | {rep.recognised:.1%} | {rep.precision:.2f} | {rep.recall:.2f} |")
    body = (f"Each design trained from scratch for the same budget of {args.minutes:g} CPU-minutes (the shipped recipe's "
            f"settings: {UNCOND_TRAIN.prediction}-prediction, {UNCOND_TRAIN.weighting} weighting, batch "
            f"{UNCOND_TRAIN.batch_size}, lr {UNCOND_TRAIN.lr}, cosine schedule), then 1,000 samples (DPM-Solver++(2M), 20 "
            f"trailing steps) were judged by the evaluator. FD / floor: Fréchet distance in evaluator features divided by "
            f"the real-vs-real floor at n=1,000.\n\n" + "\n".join(lines))
    record("unet_design", "U-Net design: quality in a fixed CPU budget",
           f"python -m benchmarks.unet_design --minutes {args.minutes:g}", body, judged=True)


if __name__ == "__main__":
    main()
