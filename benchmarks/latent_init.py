"""The latent text model (notebook 08) with its text encoder started two ways: trained with the U-Net from random weights
(the recipe's default) or pretrained on the captions alone and then frozen (`--pretrain-encoder --frozen-encoder`) — the
experiment of "Text model: how it starts, and where position is lost" for the pixel model, where it is the shipped recipe.

    python -m benchmarks.latent_init [--default DIR] [--pretrained DIR]

Each DIR holds a `latent_unet` + `latent_text_encoder` checkpoint written by the latent recipe; a DIR without one is
trained first (about 25-35 minutes each on a 2-core CPU, with the shipped VAE) with the command in the table. Defaults:
runs/latent_default, runs/latent_pretrained; the table marks the run whose U-Net is the
shipped `latent_unet` (same sha256). Quality is what each run recorded in its JSON (500 seen-pair and 500 held-out-pair
test captions, w = 3, the same prompts and seeds for all); how much the text encoder's token features change when one
word changes (`evaluation.context_sensitivity`) is measured here.
Writes "Latent model: how its text encoder starts" in BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from diffusion_course.checkpoints import checkpoint_info
from diffusion_course.evaluation import WORD_SWAPS, context_sensitivity
from diffusion_course.recipes_latent import LATENT_UNET

from .record import record
from .text_init import ATTRS, ROOT, load

# (label, option, default folder, recipe options)
RUNS = (("text encoder trained with the U-Net from random weights", "default", "latent_default", []),
        ("text encoder pretrained on captions, frozen", "pretrained", "latent_pretrained",
         ["--pretrain-encoder", "--frozen-encoder"]))


def main() -> None:
    p = argparse.ArgumentParser()
    for _, option, folder, _ in RUNS:
        p.add_argument(f"--{option}", type=Path, default=ROOT / "runs" / folder)
    args = p.parse_args()
    rows = []
    for label, option, _, options in RUNS:
        model, meta, shipped = load(getattr(args, option), options, LATENT_UNET, recipe="latent")
        context = context_sensitivity(model.conditioner)
        rows.append((label + (" (shipped)" if shipped else ""), meta, meta["quality"], options, context))
        print(label, {k: round(v, 3) for k, v in context.items()}, flush=True)

    table = ["| latent U-Net | recipe options | U-Net training minutes | " + " | ".join(ATTRS) +
             " | colour, held-out | position, held-out | shape and colour, seen | shape and colour, held-out | "
             "FD / floor | recall | token features change: colour / position |",
             "|---|---|---:|" + "---:|" * (len(ATTRS) + 7)]
    for label, meta, q, options, ctx in rows:
        table.append(f"| {label} | {' '.join(f'`{o}`' for o in options) or '(none)'} | {meta['seconds'] / 60:.1f} | "
                     + " | ".join(f"{q['accuracy'][a]:.1%}" for a in ATTRS)
                     + f" | {q['held_out_colour']:.1%} | {q['held_out_position']:.1%}"
                     + f" | {q['accuracy']['shape_and_colour']:.1%} | {q['held_out_shape_and_colour']:.1%} | "
                       f"{q['fd_ratio']:.1f} | {q['recall']:.2f} | {ctx['colour']:.2f} / {ctx['position']:.2f} |")
    d, fr = ({"q": q, "ctx": c, "minutes": meta["seconds"] / 60} for _, meta, q, _, c in rows)
    pct = lambda r, k: f"{r['q'][k]:.1%}" if k.startswith("held_out") else f"{r['q']['accuracy'][k]:.1%}"  # noqa: E731
    a, b = WORD_SWAPS["position"]
    vae_shape = checkpoint_info("vae")["meta"]["reconstruction"]["accuracy"]["shape"]
    capped = all(r["q"]["accuracy"]["shape"] <= vae_shape + 0.03 for r in (d, fr))  # 500 samples: ±2 points
    cap = ": the VAE caps it, whatever the encoder" if capped else ""
    gain = fr["q"]["accuracy"]["shape_and_colour"] - d["q"]["accuracy"]["shape_and_colour"]
    loss = d["q"]["held_out_shape_and_colour"] - fr["q"]["held_out_shape_and_colour"]  # points lost on never-seen pairs
    verdict = (f"Against the default, shape and colour both right changes by {100 * gain:+.1f} points on seen pairs and "
               f"{-100 * loss:+.1f} on never-seen ones.")
    body = f"""The latent recipe (`python -m diffusion_course.train latent`: {rows[0][1]['train']['steps']} steps ×
{rows[0][1]['train']['batch_size']} on the shipped VAE's latents) two ways; pretraining is
`prompts.pretrain_text_encoder` ({fr_steps(rows)} steps, the course's stand-in for CLIP). Quality as each run recorded it
(500 seen-pair and 500 held-out-pair test captions, w = 3, DPM-Solver++(2M) 20 steps). Last column, measured in this run:
‖T(a) − T(b)‖ / ‖T(a)‖ of the text encoder's token features when the colour word changes ('a large red circle' → 'a large
blue circle') and when the position does ('{a}' → '{b}').

{chr(10).join(table)}

Trained with the U-Net from random weights, the encoder keeps the position words only {d['ctx']['position']:.2f} apart
and the model places shapes in {pct(d, 'position')} of samples (chance: 1 in 9). Pretrained and frozen:
{fr['ctx']['position']:.2f} and {pct(fr, 'position')}, with colour on never-seen pairs at {pct(fr, 'held_out_colour')}
against {pct(d, 'held_out_colour')}; shape and colour both right in {pct(fr, 'shape_and_colour')} of seen-pair samples
(default: {pct(d, 'shape_and_colour')}) and {pct(fr, 'held_out_shape_and_colour')} of held-out ones
({pct(d, 'held_out_shape_and_colour')}); the U-Net trained in {fr['minutes']:.1f} minutes against {d['minutes']:.1f} (two
runs at different times on a noisy machine). {verdict} Shape: {pct(d, 'shape')} and {pct(fr, 'shape')},
against {vae_shape:.1%} of the VAE's
reconstructions of test images that keep their shape (its recorded measurement){cap}."""
    record("latent_init", "Latent model: how its text encoder starts", "python -m benchmarks.latent_init", body)


def fr_steps(rows) -> int:
    """The pretraining steps the pretrained runs recorded (they must agree)."""
    steps = {meta["text_encoder_pretraining"]["steps"] for _, meta, _, options, _ in rows if "--pretrain-encoder" in options}
    if len(steps) != 1:
        raise SystemExit(f"the pretrained runs used different pretraining steps: {sorted(steps)}")
    return steps.pop()


if __name__ == "__main__":
    main()
