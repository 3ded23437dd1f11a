"""Quality against network evaluations (NFE) for every sampler on the shipped unconditional model.

    python -m benchmarks.sampler_sweep [--n 1000] [--quick]

For each sampler and NFE budget, n samples start from the same initial noise (seed 1234) and are
judged by the evaluator (FD / floor at the same n, recognition, precision, recall); wall-clock per
image is measured on this machine with batches of 250. Writes benchmarks/results/sampler_sweep.json
(plotted by notebook 05) and the "Samplers" section of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

import diffusion_course as dc
from diffusion_course.evaluation.reports import evaluate_samples
from diffusion_course.recipes.configs import UNCOND_SCHEDULE
from diffusion_course.training.checkpoints import load_checkpoint, read_manifest

from .record import machine, record

RESULTS = Path(__file__).resolve().parent / "results" / "sampler_sweep.json"
#: (row label, sampler, spacing, options, step counts). Every sampler uses "trailing" spacing, which suits the
#: cosine schedule (Karras spacing over its full range, σ up to ~2·10⁴, spends most steps on pure noise); the
#: karras rows measure that choice. Heun's first trailing step (σ ≈ 2·10⁴ → ~3) is taken as an Euler step by its
#: `max_ratio` guard; the "heun, no guard" row is diffusers' Heun, to show why the guard exists.
PLAN = [
    ("ddpm", "ddpm", "trailing", {}, [10, 20, 50, 100, 250, 1000]),
    ("ddim", "ddim", "trailing", {}, [5, 10, 20, 50, 100, 250]),
    ("euler", "euler", "trailing", {}, [5, 10, 20, 50, 100]),
    ("heun", "heun", "trailing", {}, [3, 5, 10, 25, 50]),
    ("heun, no guard", "heun", "trailing", {"max_ratio": math.inf}, [10]),
    ("dpmpp_2m", "dpmpp_2m", "trailing", {}, [5, 10, 20, 50, 100]),
    ("dpmpp_2m", "dpmpp_2m", "karras", {}, [10, 20, 50]),
    ("euler", "euler", "karras", {}, [20]),
]


def run_one(model, schedule, sampler, spacing, steps, n, options=None, seed=1234, batch=250):
    """n samples; returns (samples, seconds per image, network evaluations per sample)."""
    sigmas = dc.make_sigmas(schedule, steps, spacing)
    denoiser = dc.Denoiser(model, schedule, prediction="v", clip=1.0)
    g = torch.Generator().manual_seed(seed)
    out, seconds, nfe = [], 0.0, 0
    for i in range(0, n, batch):
        x = dc.prior_sample((min(batch, n - i), 3, 32, 32), float(sigmas[0]), g)
        start = time.perf_counter()
        for step in dc.get_sampler(sampler)(denoiser, x, sigmas, generator=g, **(options or {})):
            pass
        seconds += time.perf_counter() - start
        out.append(step.x)
        nfe = step.nfe
    return torch.cat(out).clamp(-1, 1), seconds / n, nfe


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--quick", action="store_true", help="only NFE ≤ 20 (a smoke run)")
    args = p.parse_args()
    model, info = load_checkpoint("uncond")
    evaluator, _ = load_checkpoint("evaluator")
    schedule = dc.NoiseSchedule.from_kind(*UNCOND_SCHEDULE)
    rows = []
    for label, sampler, spacing, options, budgets in PLAN:
        for steps in budgets:
            if args.quick and steps > 20:
                continue
            samples, per_image, nfe = run_one(model, schedule, sampler, spacing, steps, args.n, options)
            rep = evaluate_samples(samples, evaluator)
            rows.append(dict(sampler=label, spacing=spacing, nfe=nfe, steps=steps,
                             fd=rep.fd, fd_floor=rep.fd_floor, fd_ratio=rep.fd_ratio, recognised=rep.recognised,
                             precision=rep.precision, recall=rep.recall, seconds_per_image=per_image))
            print(f"{label:15} {spacing:8} NFE {nfe:5d}: {rep}  {per_image * 1e3:.1f} ms/image", flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    cfg, meta = info["config"], info["meta"]
    described = (f"uncond: U-Net {tuple(cfg['channels'])}, patch {cfg['patch_size']}, {meta['train']['steps']} steps, FD "
                 f"{meta['quality']['fd_ratio']:.1f}× floor at n = 1,000")
    RESULTS.write_text(json.dumps({"n": args.n, "machine": machine(), "command": f"python -m benchmarks.sampler_sweep --n {args.n}",
                                   "model": described, "model_sha256": read_manifest()["uncond"]["sha256"],
                                   "rows": rows}, indent=1) + "\n")
    lines = ["| sampler | spacing | steps | NFE | FD / floor | recognised | precision | recall | ms / image |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['sampler']} | {r['spacing']} | {r['steps']} | {r['nfe']} | {r['fd_ratio']:.2f} | {r['recognised']:.1%} | "
              f"{r['precision']:.2f} | {r['recall']:.2f} | {r['seconds_per_image'] * 1e3:.1f} |" for r in rows]
    record("sampler_sweep", "Samplers: quality against network evaluations",
           f"python -m benchmarks.sampler_sweep --n {args.n}",
           f"{args.n} samples per row from the shipped `uncond` model ({described}), same initial noise for every row; FD floor at "
           f"n={args.n} is {rows[0]['fd_floor']:.2f}. Samplers: `dc.sample` with v-prediction converted to x̂₀ (clipped to "
           f"[-1, 1]); NFE is counted by the sampler (Heun's first trailing step, σ ≈ 2·10⁴ → ~3, is a single Euler "
           f"evaluation under its `max_ratio` guard; \"heun, no guard\" is diffusers' Heun). ms / image: wall-clock "
           f"in batches of 250 on this machine.\n\n" + "\n".join(lines), judged=True)


if __name__ == "__main__":
    main()
