"""Where position words get lost in the text model: a short-run 2 × 2 study (appendix a2, the text model's training).

    python -m benchmarks.text_position [--steps 800]

A study of a design the course does not ship: the text recipe from random weights on the patched text U-Net
(`recipes.studies.PATCHED_TEXT_UNET`, min-SNR weighting; the text recipe's data, captions, seeds and learning rate),
cut to `--steps` training steps (the learning-rate schedule shortened with it), four times: the text encoder trained
jointly with the U-Net or frozen at its random initialisation, and the U-Net's attention with or without the position
embedding (`UNetConfig.attention_position`). Each run is probed with `evaluation.text_probes.word_sensitivity` (how far
one changed word moves x̂₀) and `context_sensitivity` (how far it moves the text encoder's token features), and judged
on 200 seen-pair test captions (w = 3, DPM-Solver++(2M) 20 steps) for colour and position. About 10 minutes per run on
a 2-core CPU. Writes "Text model: where position words get lost (N-step runs)" in docs/benchmarks.md (studies).
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

import diffusion_course as dc
from diffusion_course.core.generation import generate
from diffusion_course.data.captions import caption_batches, evaluation_prompts
from diffusion_course.data.shapes import make_shapes
from diffusion_course.evaluation.reports import attribute_accuracy
from diffusion_course.evaluation.text_probes import (
    PROBE_SIGMAS,
    WORD_SWAPS,
    context_sensitivity,
    word_sensitivity,
)
from diffusion_course.networks.text import TextConditionedModel, TextConditioner
from diffusion_course.networks.unet import UNet
from diffusion_course.recipes.configs import (
    TEXT_GUIDANCE,
    TEXT_PHRASE_DROP,
    TEXT_TRAIN,
    TRAIN_IMAGES,
)
from diffusion_course.recipes.pixel import _fit
from diffusion_course.recipes.studies import PATCHED_TEXT_UNET
from diffusion_course.training.checkpoints import load_checkpoint

from .record import record

N_PROMPTS = 200
RUNS = (("jointly trained", False, False), ("jointly trained", False, True),
        ("frozen at random init", True, False), ("frozen at random init", True, True))


def run(steps: int, frozen: bool, position: bool, data, prompts, evaluator) -> dict:
    dc.seed_everything(0)
    cfg = replace(TEXT_TRAIN, steps=steps, seed=0, weighting="min_snr")  # the patched design's weighting (the shipped text recipe uses none)
    conditioner = TextConditioner()
    conditioner.encoder.requires_grad_(not frozen)
    model = TextConditionedModel(UNet(replace(PATCHED_TEXT_UNET, attention_position=position)), conditioner)
    batches = caption_batches(data.images, data.attrs, conditioner, cfg.batch_size, TEXT_PHRASE_DROP)
    t0 = time.perf_counter()
    ema, schedule, meta = _fit(model, cfg, batches, model.drop)
    minutes = (time.perf_counter() - t0) / 60
    ema.eval()
    probe = word_sensitivity(dc.Denoiser(ema, schedule, prediction=cfg.prediction), ema.conditioner)
    context = context_sensitivity(ema.conditioner)
    null = lambda b, dev: ema.conditioner.tokenize([""] * b, dev)  # noqa: E731
    captions, attrs = prompts
    images = generate(ema, schedule, len(captions), seed=1234, prediction=cfg.prediction, guidance=TEXT_GUIDANCE,
                      cond=ema.conditioner.tokenize(captions, "cpu"), null_cond=null)
    acc = attribute_accuracy(evaluator.read(images), {k: attrs[k] for k in ("colour", "position")})
    return {"probe": probe, "context": context, "accuracy": acc, "minutes": minutes, "loss": meta["final_loss"]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=800)
    args = p.parse_args()
    data = make_shapes(TRAIN_IMAGES, split="train", seed=0)
    prompts = evaluation_prompts(N_PROMPTS, held_out=False)
    evaluator = load_checkpoint("evaluator")[0]
    rows = []
    for label, frozen, position in RUNS:
        r = run(args.steps, frozen, position, data, prompts, evaluator)
        rows.append((label, position, r))
        print(label, position, {k: round(max(v), 3) for k, v in r["probe"].items()}, r["accuracy"], flush=True)
    lines = ["| text encoder | position embedding | position words move x̂₀ by | colour word moves x̂₀ by | "
             "position words move the token features by | colour word: token features | position right | "
             "colour right | final loss |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label, position, r in rows:
        lines.append(f"| {label} | {'yes' if position else 'no'} | "
                     + " | ".join(" / ".join(f"{v:.3f}" for v in r["probe"][w]) for w in ("position", "colour"))
                     + f" | {r['context']['position']:.2f} | {r['context']['colour']:.2f} | "
                     f"{r['accuracy']['position']:.1%} | {r['accuracy']['colour']:.1%} | {r['loss']:.4f} |")
    body = f"""The text recipe from random weights on the patched text U-Net (`recipes.studies.PATCHED_TEXT_UNET`, min-SNR weighting), cut to {args.steps} steps × 64
images, four ways. x̂₀ probes at σ = {', '.join(f'{s:g}' for s in PROBE_SIGMAS)} (`evaluation.text_probes.word_sensitivity`,
{WORD_SWAPS['position'][0]!r} → {WORD_SWAPS['position'][1]!r} and {WORD_SWAPS['colour'][0]!r} →
{WORD_SWAPS['colour'][1]!r}); token features: ‖T(a) − T(b)‖ / ‖T(a)‖ (`evaluation.text_probes.context_sensitivity`); accuracy on
{N_PROMPTS} seen-pair test captions at w = {TEXT_GUIDANCE:g} (chance for position: 1 in 9). Short runs: a diagnosis of what
each model starts to listen to, not the quality of a finished model (the full runs are in "Text model: how it starts").

{chr(10).join(lines)}"""
    record("text_position", f"Text model: where position words get lost ({args.steps}-step runs)",
           "python -m benchmarks.text_position", body, judged=True)


if __name__ == "__main__":
    main()
