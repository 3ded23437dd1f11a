"""A study: the course's patched U-Net (`recipes.studies.PATCHED_UNET`, which folds 2×2 pixel patches into channels; measured,
not shipped) against diffusers.UNet2DModel at a matched parameter count: speed, and quality at equal steps. (The shipped
pixel models use the unpatched `UNCOND_UNET`, the same design as a diffusers U-Net of its widths; notebook 03.)

    python -m benchmarks.unet_vs_diffusers [--steps 1000]

Throughput: training images/s of both, same batch (64), alternating runs, medians, in one process.
Quality: both trained with the shipped recipe's settings for the same number of steps from the same
seed, then 1,000 samples each judged by the evaluator. Writes "U-Net vs diffusers" in docs/benchmarks.md (studies).
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch
from diffusers import UNet2DModel
from torch import nn

import diffusion_course as dc
from diffusion_course.core.generation import generate
from diffusion_course.evaluation.reports import evaluate_samples
from diffusion_course.recipes.configs import UNCOND_SCHEDULE, UNCOND_TRAIN
from diffusion_course.recipes.studies import PATCHED_UNET
from diffusion_course.training.checkpoints import load_checkpoint
from diffusion_course.training.loop import batches_from_tensors, train_diffusion

from .record import median, record


class DiffusersUNet(nn.Module):
    """UNet2DModel behind the course's model contract net(x_t, t, cond)."""

    def __init__(self, channels=(32, 64, 128)):
        super().__init__()
        n = len(channels)
        self.inner = UNet2DModel(sample_size=32, in_channels=3, out_channels=3, block_out_channels=channels,
                                 layers_per_block=1, down_block_types=("DownBlock2D",) * (n - 1) + ("AttnDownBlock2D",),
                                 up_block_types=("AttnUpBlock2D",) + ("UpBlock2D",) * (n - 1), norm_num_groups=8,
                                 attention_head_dim=32, resnet_time_scale_shift="scale_shift")

    def forward(self, x, t, cond=None):
        return self.inner(x, t).sample


def train_speed(net: nn.Module, batch: int, runs: int = 5) -> list[float]:
    opt = torch.optim.AdamW(net.parameters(), lr=1e-5)
    x, t = torch.randn(batch, 3, 32, 32), torch.rand(batch) * 999
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        loss = net(x, t).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        out.append(batch / (time.perf_counter() - start))
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=1000)
    args = p.parse_args()
    torch.manual_seed(0)
    ours, theirs = dc.UNet(PATCHED_UNET), DiffusersUNet()
    speeds = {"ours": [], "diffusers": []}
    for _ in range(3):  # alternate so machine noise hits both alike
        speeds["ours"] += train_speed(ours, UNCOND_TRAIN.batch_size)[1:]
        speeds["diffusers"] += train_speed(theirs, UNCOND_TRAIN.batch_size)[1:]
    images = dc.make_shapes(50_000, split="train", seed=0).images
    schedule = dc.NoiseSchedule.from_kind(*UNCOND_SCHEDULE)
    evaluator, _ = load_checkpoint("evaluator")
    cfg = replace(UNCOND_TRAIN, steps=args.steps, warmup=min(UNCOND_TRAIN.warmup, args.steps // 10))
    reports, minutes = {}, {}
    for name, make in [("ours", lambda: dc.UNet(PATCHED_UNET)), ("diffusers", DiffusersUNet)]:
        torch.manual_seed(0)
        res = train_diffusion(make(), schedule, batches_from_tensors(images, None, cfg.batch_size), cfg, show_progress=False)
        minutes[name] = res.seconds / 60
        samples = generate(res.ema, schedule, 1000, seed=1234, device=torch.device("cpu"), prediction=cfg.prediction)
        reports[name] = evaluate_samples(samples, evaluator)
        print(name, res.summary(), reports[name], flush=True)
    ratio = median(speeds["ours"]) / median(speeds["diffusers"])
    lines = ["| model | parameters | train img/s (median) | training minutes for the run | FD / floor | recognised | precision | recall |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, net in [("ours (patch 2, " + str(PATCHED_UNET.channels) + ")", ours), ("diffusers UNet2DModel (32, 64, 128)", theirs)]:
        key = "ours" if name.startswith("ours") else "diffusers"
        r = reports[key]
        lines.append(f"| {name} | {dc.count_parameters(net) / 1e6:.2f}M | {median(speeds[key]):.1f} | {minutes[key]:.1f} | "
                     f"{r.fd_ratio:.2f} | {r.recognised:.1%} | {r.precision:.2f} | {r.recall:.2f} |")
    ours_q, theirs_q = reports["ours"], reports["diffusers"]
    at_least_as_good = ours_q.fd_ratio <= theirs_q.fd_ratio and ours_q.recognised >= theirs_q.recognised
    verdict = ("Goal (≥ 1.5× faster at equal or better quality): "
               + ("**met**." if ratio >= 1.5 and at_least_as_good else
                  f"**not met** — after the same steps ours scores FD {ours_q.fd_ratio:.1f}× floor against diffusers' "
                  f"{theirs_q.fd_ratio:.1f}×, recognised {ours_q.recognised:.1%} against {theirs_q.recognised:.1%}."))
    body = (f"**Ours trains {ratio:.2f}× faster** (batch {UNCOND_TRAIN.batch_size}; medians over alternating runs). Quality "
            f"after the same {args.steps} steps of the shipped recipe from the same seed, 1,000 samples each "
            f"(DPM-Solver++(2M), 20 trailing steps). Both use the same widths and attention placement; ours "
            f"(`recipes.studies.PATCHED_UNET`, a design measured and not shipped) folds 2×2 pixel patches into channels "
            f"first, so its convolutions run at 16×16 and below.\n\n{verdict}\n\n" + "\n".join(lines))
    record("unet_vs_diffusers", "U-Net vs diffusers.UNet2DModel", f"python -m benchmarks.unet_vs_diffusers --steps {args.steps}",
           body, judged=True)


if __name__ == "__main__":
    main()
