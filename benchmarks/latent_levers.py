"""Issue 6's last point: the sampling-time levers on the shipped mini Stable Diffusion, measured against the 95% bar.

    python -m benchmarks.latent_levers [--captions 500] [--seeds 0 77]

The best shipped combination (the latent U-Net above t = 300, its low-noise expert below, drawn by the wider decoder) has
shape and colour both right in about 94–95% of seen-pair samples at w = 3; issue 6 asks for 95%. This benchmark tries,
on the same shipped weights and without training anything, every lever that sampling alone offers, and reports each
with its 95% interval (Wilson) pooled over the caption sets:

- the guidance scale w;
- guidance only above a noise level σ_lo (EDM2's guidance interval);
- a different w above and below the switch (the U-Net's steps, the expert's steps);
- moving the switch (t_switch = 1000: the expert, fine-tuned on t < 300 only, at every step);
- autoguidance (Karras et al. 2024) below the switch: the expert guided away from the U-Net, the weaker model for those
  noise levels, v = v_expert + a·(v_expert − v_U-Net), on top of classifier-free guidance at w = 3.

Each row: `--captions` seen-pair test captions per caption seed (`evaluation_prompts(n, held_out=False, seed=s)`; seed 0
is the recipe's set), DPM-Solver++(2M), 20 trailing steps, the same initial noise. About 25 s per row and caption set
on a 2-core CPU (a U-Net and an expert call per step for the split-w and autoguidance rows). Writes "Latent model: the
sampling levers against the 95% bar" in BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import time

import torch
from torch import nn

import diffusion_course as dc
from diffusion_course.checkpoints import load_checkpoint, read_manifest
from diffusion_course.evaluation import against_bar, joint_accuracy
from diffusion_course.experts import SwitchAtTimestep
from diffusion_course.prompts import evaluation_prompts
from diffusion_course.recipes_latent import LATENT_SCHEDULE, load_latent_model, sample_latent_model
from diffusion_course.text import TextConditionedModel

from .record import record

BAR = 0.95  # issue 6
W = 3.0  # the recipe's guidance scale (LATENT_GUIDANCE)
NEEDS = ("vae", "vae_decoder_wide", "latent_unet", "latent_text_encoder", "latent_refiner", "evaluator")


class SplitGuidance(nn.Module):
    """Classifier-free guidance inside the model: scale `w_high` at t ≥ t_switch, `w_low` below (sample it unguided)."""

    def __init__(self, model: TextConditionedModel, w_high: float, w_low: float, t_switch: float):
        super().__init__()
        self.model, self.w_high, self.w_low, self.t_switch = model, w_high, w_low, t_switch
        self.net, self.conditioner = model.net, model.conditioner

    def forward(self, x, t, cond=None):
        null = self.conditioner.tokenize([""] * x.shape[0], x.device)
        v_cond, v_null = self.model(x, t, cond), self.model(x, t, null)
        w = self.w_low if bool((t < self.t_switch).all()) else self.w_high
        return v_null + w * (v_cond - v_null)


class AutoGuidedExpert(nn.Module):
    """A SwitchAtTimestep whose low-noise steps are v_low + a (v_low - v_high): the expert guided away from the U-Net."""

    def __init__(self, switch: SwitchAtTimestep, a: float):
        super().__init__()
        self.switch, self.a, self.config = switch, a, switch.config

    def forward(self, x, t, cond=None):
        if bool((t < self.switch.t_switch).all()):
            v_low = self.switch.low(x, t, cond)
            return v_low + self.a * (v_low - self.switch.high(x, t, cond))
        return self.switch(x, t, cond)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--captions", type=int, default=500, help="seen-pair captions per caption seed")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 77], help="caption seeds (0: the recipe's captions)")
    args = p.parse_args()
    if args.captions < 1:
        p.error("--captions must be at least 1")
    torch.set_grad_enabled(False)
    manifest = read_manifest()
    missing = [n for n in NEEDS if n not in manifest]
    if missing:
        print(f"latent_levers needs the checkpoint(s) {', '.join(missing)}, not shipped; skipped.")
        return
    vae, _ = load_checkpoint("vae")
    adapter = dc.LatentAdapter(dc.with_decoder(vae, load_checkpoint("vae_decoder_wide")[0]))
    pair, _ = load_latent_model(refiner=True)
    switch = pair.net
    schedule = dc.NoiseSchedule.from_kind(*LATENT_SCHEDULE)
    evaluator, _ = load_checkpoint("evaluator")
    sets = [evaluation_prompts(args.captions, held_out=False, seed=s) for s in args.seeds]
    t_sw = switch.t_switch
    with_switch = lambda t: TextConditionedModel(SwitchAtTimestep(switch.high, switch.low, t), pair.conditioner)  # noqa: E731
    with_auto = lambda a: TextConditionedModel(AutoGuidedExpert(switch, a), pair.conditioner)  # noqa: E731
    # (lever, setting, model, guidance scale (None: the model guides itself), guidance interval)
    rows = [("shipped (reference)", f"w = {W:g}, switch at t = {t_sw:g}", pair, W, None)]
    rows += [("guidance scale", f"w = {w:g}", pair, w, None) for w in (2.0, 4.0)]
    rows += [("guidance interval", f"w = {W:g} only at σ > {lo:g}", pair, W, (lo, float("inf"))) for lo in (0.1, 0.3)]
    rows += [("w above / below the switch", f"w = {hi:g} / {lo:g}", SplitGuidance(pair, hi, lo, t_sw), None, None)
             for hi, lo in ((3.0, 1.5), (3.0, 5.0), (4.0, 3.0))]
    rows += [("switch point", f"t_switch = {t} (σ = {float(schedule.sigma(t)):.2f})", with_switch(t), W, None)
             for t in (200, 400)]
    rows += [("switch point", "t_switch = 1000: the expert at every step", with_switch(1000), W, None)]
    rows += [("autoguidance below the switch", f"a = {a:g}, w = {W:g}", with_auto(a), W, None) for a in (0.5, 1.0)]
    results = []
    for lever, setting, model, w, interval in rows:
        start, per_set, k, n = time.perf_counter(), [], 0, 0
        for captions, attrs in sets:  # the recipe's sampling (seed 1234), with this row's model and guidance
            images = sample_latent_model(model.eval(), schedule, adapter, captions, "cpu", guidance=w,
                                         guidance_interval=interval)
            per_set.append(joint_accuracy(evaluator.read(images), attrs))
            k, n = k + round(per_set[-1] * len(captions)), n + len(captions)
        lo, hi, verdict = against_bar(k, n, BAR)
        results.append((lever, setting, per_set, k, n, lo, hi, verdict, time.perf_counter() - start))
        print(f"{lever}: {setting}: " + " | ".join(f"{a:.1%}" for a in per_set) + f" → {k / n:.1%} ({lo:.1%}–{hi:.1%})",
              flush=True)
    shas = ", ".join(f"{name} {manifest[name]['sha256'][:12]}…" for name in ("latent_unet", "latent_refiner", "vae_decoder_wide"))
    seeds = ", ".join(f"seed {s}" + (", the recipe's" if s == 0 else "") for s in args.seeds)
    lines = [f"The shipped weights ({shas}); no training. Each row: {args.captions} seen-pair test captions for each caption "
             f"set ({seeds}), DPM-Solver++(2M), 20 trailing steps, the same initial noise (seed 1234); shape and colour "
             f"both read right by the shipped evaluator. Issue 6's bar: at least {BAR:.0%} at the best guidance scale. The "
             "interval is Wilson's 95% interval for the pooled share. Split w: classifier-free guidance at the first scale "
             "for the U-Net's steps and the second for the expert's. Autoguidance: v = v_expert + a·(v_expert − v_U-Net) "
             "below the switch, then classifier-free guidance.", "",
             "| lever | setting | " + " | ".join(f"seed {s}" for s in args.seeds) + " | pooled | 95% interval | "
             "against the 95% bar | seconds |", "|---|---|" + "---:|" * len(args.seeds) + "---:|---:|---|---:|"]
    for lever, setting, per_set, k, n, lo, hi, verdict, s in results:
        lines.append(f"| {lever} | {setting} | " + " | ".join(f"{a:.1%}" for a in per_set) + f" | {k / n:.1%} | "
                     f"{lo:.1%}–{hi:.1%} | {'not resolved from' if verdict == 'not resolved' else verdict} the bar | {s:.0f} |")
    best = max(results, key=lambda r: r[3] / r[4])
    lines += ["", f"Best row in this run: {best[0]}, {best[1]}: {best[3] / best[4]:.1%} ({best[5]:.1%}–{best[6]:.1%}); "
              f"the reference: {results[0][3] / results[0][4]:.1%} ({results[0][5]:.1%}–{results[0][6]:.1%})."]
    command = "python -m benchmarks.latent_levers"
    if args.captions != p.get_default("captions"):
        command += f" --captions {args.captions}"
    if args.seeds != p.get_default("seeds"):
        command += " --seeds " + " ".join(map(str, args.seeds))
    record("latent_levers", "Latent model: the sampling levers against the 95% bar", command, "\n".join(lines))


if __name__ == "__main__":
    main()
