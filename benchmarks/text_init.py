"""A study of what decides which words the pixel text model listens to: where the U-Net starts (fine-tuned from an
unconditional model or from random weights), whether its attention layers know where each pixel is (the position
embedding), and whether the text encoder learns with the U-Net or stays frozen — at its random initialisation, or after
a short pretraining on the captions alone (`training.text_encoder.pretrain_text_encoder`, the course's stand-in for
CLIP). Appendix a2 (how the text model was trained) reads its results.

    python -m benchmarks.text_init [--finetuned DIR] [--scratch DIR] [--position DIR] [--frozen DIR] [--pretrained DIR]
                                   [--pretrained-joint DIR] [--tokens DIR] [--gpu DIR]

Every run here trained the patched text U-Net (`recipes.studies.PATCHED_TEXT_UNET`, a design measured and not shipped)
with min-SNR weighting, about 40-50 minutes each on a 2-core CPU; the fine-tuned run started from the unconditional
recipe trained on the patched U-Net (`PATCHED_UNET`). Each DIR holds one run's `text_unet` + `text_encoder` checkpoint.
The text recipe builds the shipped `TEXT_UNET` (notebook 04's U-Net with cross-attention, no min-SNR weighting, the
position embedding always on) and has no `--attention-position` option, so these runs cannot be trained afresh from the
table's commands: a DIR without its recorded run is refused. Defaults: runs/text_finetuned, runs/text_scratch,
runs/text_position, runs/text_frozen, runs/text_pretrained, runs/text_pretrained_joint, runs/text_tokens, runs/gpu_text
(a GPU run: the options in `GPU_RUNS`; refused without a CUDA GPU); the table marks a run whose U-Net is the shipped
`text_unet` (same sha256). Quality is what each run recorded in its JSON (500 seen-pair and 500 held-out-pair test
captions, w = 3, the same prompts and seeds for all); the word probe and the text encoder's share of it
(`evaluation.text_probes.word_sensitivity`, `context_sensitivity`) are measured here.
Writes "Text model: how it starts, and where position is lost" in docs/benchmarks.md (studies).
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch

import diffusion_course as dc
from diffusion_course.evaluation.text_probes import (
    PROBE_SIGMAS,
    WORD_SWAPS,
    context_sensitivity,
    word_consistency,
    word_sensitivity,
)
from diffusion_course.recipes.configs import UNCOND_SCHEDULE
from diffusion_course.recipes.studies import PATCHED_TEXT_UNET
from diffusion_course.train import main as train
from diffusion_course.training.checkpoints import (
    load_text_model,
    read_manifest,
    sha256,
    trained_on_cpu,
)

from .record import record

ROOT = Path(__file__).resolve().parents[1]
ATTRS = ("shape", "colour", "size", "position")
POSITION = replace(PATCHED_TEXT_UNET, attention_position=True)
# (label, option, default folder, recipe options, expected U-Net config)
RUNS = (("fine-tuned from the patched unconditional model", "finetuned", "text_finetuned", [], PATCHED_TEXT_UNET),
        ("from scratch", "scratch", "text_scratch", ["--from-scratch"], PATCHED_TEXT_UNET),
        ("from scratch, position embedding", "position", "text_position", ["--from-scratch", "--attention-position"],
         POSITION),
        ("from scratch, text encoder frozen at random init", "frozen", "text_frozen", ["--from-scratch", "--frozen-encoder"],
         PATCHED_TEXT_UNET),
        ("from scratch, text encoder pretrained on captions, frozen", "pretrained", "text_pretrained",
         ["--from-scratch", "--pretrain-encoder", "--frozen-encoder"], PATCHED_TEXT_UNET),
        ("from scratch, text encoder pretrained on captions, then trained jointly", "pretrained_joint",
         "text_pretrained_joint", ["--from-scratch", "--pretrain-encoder"], PATCHED_TEXT_UNET),
        ("from scratch, text encoder pretrained on captions and on keeping each word in its token, frozen", "tokens",
         "text_tokens", ["--from-scratch", "--pretrain-encoder", "--token-targets", "--frozen-encoder"], PATCHED_TEXT_UNET),
        ("the same, trained on a GPU, batch 512", "gpu", "gpu_text",
         ["--from-scratch", "--pretrain-encoder", "--token-targets", "--frozen-encoder"], PATCHED_TEXT_UNET))
#: runs trained on a GPU (by option): how their folder is filled when it is empty, with the step count each recorded
GPU_RUNS = {"gpu": ["--device", "cuda", "--batch-size", "512", "--steps", "2534"],
            "gpu-default": ["--device", "cuda", "--batch-size", "512", "--steps", "2421"],
            "gpu-tokens": ["--device", "cuda", "--batch-size", "512", "--steps", "3110"]}
RUN_LENGTH = {"--out", "--device", "--batch-size", "--minutes", "--steps", "--sample-every"}  # not recipe options
SHIPPED = read_manifest()


def load(folder: Path, options: list[str], expect, recipe: str = "text", gpu: list[str] | None = None):
    """(model, meta, shipped) of the `recipe`'s text-conditional checkpoint in `folder` (text: text_unet + text_encoder,
    latent: latent_unet + latent_text_encoder), training it there first if it is missing (with the run-length options
    `gpu` for a GPU run); `shipped`: its U-Net weights are the ones the package ships (same sha256)."""
    unet, encoder = ("text_unet", "text_encoder") if recipe == "text" else ("latent_unet", "latent_text_encoder")
    if not (folder / f"{unet}.safetensors").exists():
        if recipe == "text":  # the text recipe builds TEXT_UNET, not the patched U-Net these runs trained
            raise SystemExit(f"{folder} has no {unet}: the text runs of this table cannot be trained afresh (the text "
                             "recipe builds TEXT_UNET, not the patched U-Net they trained); pass the folders of the "
                             "recorded runs")
        train([recipe, *options, *(gpu or []), "--out", str(folder)])
    model, info = load_text_model(unet, encoder, expect=expect, directory=folder)
    meta = info["meta"]
    flags = {w for w in meta["command"].split() if w.startswith("--")} - RUN_LENGTH  # the recipe options
    if flags != set(options):
        raise SystemExit(f"{folder} holds a model trained by {meta['command']!r}, not with the options {options}")
    on_gpu = not trained_on_cpu(meta)
    batch = int(gpu[gpu.index("--batch-size") + 1]) if gpu else None
    if on_gpu != bool(gpu) or (gpu and meta["train"]["batch_size"] != batch):
        raise SystemExit(f"{folder} holds a model trained on {meta['machine']} with batch {meta['train']['batch_size']}: "
                         f"this row expects {'a GPU run with batch ' + str(batch) if gpu else 'a CPU run'}")
    return model, meta, sha256(folder / f"{unet}.safetensors") == SHIPPED[unet]["sha256"]


def check_gpu_folders(folders: dict[str, Path], recipe: str) -> None:
    """Refuse at once, before any CPU training, when a GPU run's folder is empty and this machine has no CUDA GPU."""
    unet = "text_unet" if recipe == "text" else "latent_unet"
    for option, folder in folders.items():
        if option in GPU_RUNS and not (folder / f"{unet}.safetensors").exists() and not torch.cuda.is_available():
            raise SystemExit(f"{folder} is empty and its run needs a CUDA GPU (python -m diffusion_course.train {recipe} "
                             f"... {' '.join(GPU_RUNS[option])}), which this machine does not have.")


def main() -> None:
    p = argparse.ArgumentParser()
    for _, option, folder, _, _ in RUNS:
        p.add_argument(f"--{option.replace('_', '-')}", dest=option, type=Path, default=ROOT / "runs" / folder)
    args = p.parse_args()
    schedule = dc.NoiseSchedule.from_kind(*UNCOND_SCHEDULE)
    rows = []
    check_gpu_folders({option.replace("_", "-"): getattr(args, option) for _, option, *_ in RUNS}, "text")
    for label, option, _, options, expect in RUNS:
        model, meta, shipped = load(getattr(args, option), options, expect, gpu=GPU_RUNS.get(option))
        label += " (shipped)" if shipped else ""
        probe = word_sensitivity(dc.Denoiser(model, schedule, prediction=meta["prediction"]), model.conditioner)
        context = {**context_sensitivity(model.conditioner), "consistency": word_consistency(model.conditioner)}
        rows.append((label, meta, meta["quality"], probe, options, context))
        print(label, {k: round(max(v), 3) for k, v in probe.items()}, {k: round(v, 3) for k, v in context.items()},
              flush=True)

    quality = ["| text U-Net | recipe options | training minutes | " + " | ".join(ATTRS) +
               " | colour, held-out | position, held-out | shape and colour, seen | shape and colour, held-out | "
               "FD / floor | recall |", "|---|---|---:|" + "---:|" * (len(ATTRS) + 6)]
    for label, meta, q, _, options, _ in rows:
        quality.append(f"| {label} | {' '.join(f'`{o}`' for o in options) or '(none)'} | {meta['seconds'] / 60:.0f} | "
                       + " | ".join(f"{q['accuracy'][a]:.1%}" for a in ATTRS)
                       + f" | {q['held_out_colour']:.1%} | {q['held_out_position']:.1%}"
                       + f" | {q['accuracy']['shape_and_colour']:.1%} | {q['held_out_shape_and_colour']:.1%} | "
                         f"{q['fd_ratio']:.1f} | {q['recall']:.2f} |")
    probe = ["| word changed | " + " | ".join(label for label, *_ in rows) + " |", "|---|" + "---:|" * len(rows)]
    for word, (a, b) in WORD_SWAPS.items():
        probe.append(f"| {word} ('{a}' → '{b}') | "
                     + " | ".join(" / ".join(f"{v:.3f}" for v in r[3][word]) + f" ({r[5][word]:.2f})" for r in rows) + " |")
    probe.append("| the colour word's own token feature, 'blue' before each of the 8 shapes: mean cosine similarity "
                 "(`evaluation.text_probes.word_consistency`) | " + " | ".join(f"{r[5]['consistency']:.2f}" for r in rows) + " |")
    f, sc, po, fr, pt, pj, tk, gp = ({"meta": m, "q": q, "probe": pr, "ctx": c} for _, m, q, pr, _, c in rows)
    acc = lambda r, a: f"{r['q']['accuracy'][a]:.1%}"  # noqa: E731
    moves = lambda r, w: f"{max(r['probe'][w]):.3f}"  # noqa: E731
    train = f["meta"]["train"]
    body = f"""The same text recipe (`python -m diffusion_course.train text`, {train['steps']} steps × {train['batch_size']},
lr {train['lr']}, captions with phrases dropped, the caption dropped 15% of the time) seven ways on the 2-core CPU, and the
last of them once more on a GPU, all on the patched text U-Net (`recipes.studies.PATCHED_TEXT_UNET`, min-SNR weighting,
a design measured and not shipped): the U-Net started from the unconditional recipe's weights on the patched U-Net (new
layers zero-initialised) or from random weights (`--from-scratch`); with or without
the position embedding in its attention layers (`UNetConfig.attention_position`, `--attention-position`); and the text
encoder trained with the U-Net from random weights (the first three), kept frozen at its random initialisation
(`--frozen-encoder`), or first pretrained for {pt['meta']['text_encoder_pretraining']['steps']} steps to read each
partial caption's attributes back from its pooled features (`training.text_encoder.pretrain_text_encoder`, the course's
stand-in for CLIP) and then frozen (`--pretrain-encoder --frozen-encoder`) or trained on with the U-Net (`--pretrain-encoder`); the last
run adds to that pretraining a head that must read each token's own word back from its feature (`--token-targets`), meant
to make the colour word's feature depend less on the shape beside it. Quality as each run recorded it (500 seen-pair and 500
held-out-pair test captions, w = 3, DPM-Solver++(2M) 20 steps); the word probe measured in this run: root-mean-square
change of x̂₀ when one part of the caption changes, 32 noisy inputs at each σ = {', '.join(f'{s:g}' for s in PROBE_SIGMAS)};
in brackets, the same change one step earlier, in the text encoder's token features (`evaluation.text_probes.context_sensitivity`:
‖T(a) − T(b)‖ / ‖T(a)‖).

{chr(10).join(quality)}

{chr(10).join(probe)}

Where the U-Net starts decides colour: {acc(f, 'colour')} fine-tuned against {acc(sc, 'colour')} from scratch (the colour
word moves x̂₀ by at most {moves(f, 'colour')} against {moves(sc, 'colour')}). Whenever the text encoder learns with the
U-Net, position is ignored: {acc(f, 'position')}, {acc(sc, 'position')} and {acc(po, 'position')} (chance: 1 in 9), even with
the position embedding; the position words move x̂₀ by at most {moves(f, 'position')}, {moves(sc, 'position')} and
{moves(po, 'position')}, and one step earlier the encoder's token features by {f['ctx']['position']:.2f},
{sc['ctx']['position']:.2f} and {po['ctx']['position']:.2f} of their size (the colour word: {f['ctx']['colour']:.2f},
{sc['ctx']['colour']:.2f}, {po['ctx']['colour']:.2f}): trained from scratch with the U-Net, the encoder erases most of
the difference (within the first 800 steps: "Text model: where position words get lost"); fine-tuned, it keeps some, but
the U-Net never learns to read it. Frozen at its random initialisation, the encoder keeps them
({fr['ctx']['position']:.2f}) and the U-Net learns to place shapes: position right in {acc(fr, 'position')} of seen-pair
samples and {fr['q']['held_out_position']:.1%} of held-out ones (position words move x̂₀ by up to {moves(fr, 'position')}) —
but colour falls to {acc(fr, 'colour')} (the colour word moves x̂₀ by at most {moves(fr, 'colour')}) and shape to
{acc(fr, 'shape')}. {pretrained_sentence(pt, sc, acc)} {joint_sentence(pj, pt, sc, acc)} {tokens_sentence(tk, pt)}

{gpu_sentence(gp, tk)}"""
    record("text_init", "Text model: how it starts, and where position is lost", "python -m benchmarks.text_init", body)


def pretrained_sentence(pt: dict, sc: dict, acc) -> str:
    """What the pretrained, frozen encoder changed against the jointly trained one from random weights (`sc`), in words
    chosen by the numbers."""
    q, base = pt["q"], sc["q"]
    seen = [*ATTRS, "shape_and_colour"]
    better = (all(q["accuracy"][a] > base["accuracy"][a] for a in seen) and q["fd_ratio"] < base["fd_ratio"])
    verdict = ("better than the encoder trained with the U-Net from random weights on every seen-pair number in the "
               "table" if better else "not better than the encoder trained with the U-Net from random weights on every "
               "seen-pair number")
    held = "more" if q["held_out_colour"] >= base["held_out_colour"] else "less"
    return f"""Pretrained on the captions alone and then frozen, the encoder keeps every part of the caption apart (token
features: position {pt['ctx']['position']:.2f}, colour {pt['ctx']['colour']:.2f}, shape {pt['ctx']['shape']:.2f}) and the
U-Net reads all of them: position {acc(pt, 'position')}, colour {acc(pt, 'colour')}, size {acc(pt, 'size')}, shape
{acc(pt, 'shape')}; shape and colour both right in {acc(pt, 'shape_and_colour')} of seen-pair samples against
{acc(sc, 'shape_and_colour')}, FD {q['fd_ratio']:.1f}× the floor against {base['fd_ratio']:.1f}× — {verdict}. On
held-out pairs: shape and colour {q['held_out_shape_and_colour']:.1%} against {base['held_out_shape_and_colour']:.1%},
position {q['held_out_position']:.1%}, but colour {q['held_out_colour']:.1%} against {base['held_out_colour']:.1%}: it
puts colours on never-seen shapes {held} reliably than the jointly trained encoder did (its pretraining saw only
training-split captions, like every recipe here)."""


def joint_sentence(pj: dict, pt: dict, sc: dict, acc) -> str:
    """What training the pretrained encoder on with the U-Net (`pj`) changed against keeping it frozen (`pt`) and against
    no pretraining (`sc`), in words chosen by the numbers."""
    q = pj["q"]
    kept = q["accuracy"]["position"] > 0.5
    position = (f"the position words survive joint training (token features {pj['ctx']['position']:.2f}, position "
                f"{acc(pj, 'position')})" if kept else
                f"joint training erases the position words again (token features {pj['ctx']['position']:.2f}, position "
                f"{acc(pj, 'position')})")
    top = {k: max((pj, pt, sc), key=lambda r: r["q"][k] if k.startswith("held") else r["q"]["accuracy"][k])
           for k in ("shape_and_colour", "held_out_shape_and_colour")}
    best = ("Of the three, the frozen, pretrained encoder has shape and colour right most often on seen and on never-seen "
            "pairs." if top["shape_and_colour"] is pt and top["held_out_shape_and_colour"] is pt else
            "No one of the three has shape and colour right most often on both seen and never-seen pairs.")
    held = (f"{q['held_out_colour']:.1%} against {pt['q']['held_out_colour']:.1%} frozen and "
            f"{sc['q']['held_out_colour']:.1%} without pretraining")
    return f"""Pretrained and then trained on with the U-Net (`--pretrain-encoder` alone): {position}; colour
{acc(pj, 'colour')}, shape {acc(pj, 'shape')}, shape and colour both right in {acc(pj, 'shape_and_colour')} of seen-pair
samples ({acc(pt, 'shape_and_colour')} frozen, {acc(sc, 'shape_and_colour')} without pretraining) and
{q['held_out_shape_and_colour']:.1%} of held-out ones ({pt['q']['held_out_shape_and_colour']:.1%},
{sc['q']['held_out_shape_and_colour']:.1%}); colour on held-out pairs {held}; FD {q['fd_ratio']:.1f}× the floor.
{best}"""


def tokens_sentence(tk: dict, pt: dict) -> str:
    """What the token targets changed against the same frozen, pretrained encoder without them (`pt`)."""
    q, base = tk["q"], pt["q"]
    pairs = (("colour on never-seen pairs", "held_out_colour"), ("shape and colour, seen", "shape_and_colour"),
             ("shape and colour, never seen", "held_out_shape_and_colour"), ("position", "position"))
    get = lambda r, k: r[k] if k.startswith("held") else r["accuracy"][k]  # noqa: E731
    return ("With token targets added to the pretraining (frozen as well), the colour word's token feature stays closer to "
            f"itself across shapes ({tk['ctx']['consistency']:.2f} against {pt['ctx']['consistency']:.2f}) and: " +
            ", ".join(f"{label} {get(q, k):.1%} against {get(base, k):.1%}" for label, k in pairs) +
            f", FD {q['fd_ratio']:.1f}× the floor against {base['fd_ratio']:.1f}×.")


def gpu_sentence(gp: dict, tk: dict) -> str:
    """The last recipe trained on a GPU (`gp`) against the same recipe on the CPU (`tk`), side by side (one run each:
    batch, images seen, device and torch version all differ, so no single cause is claimed)."""
    q, base, t, tc = gp["q"], tk["q"], gp["meta"]["train"], tk["meta"]["train"]
    images, cpu_images = t["steps"] * t["batch_size"], tc["steps"] * tc["batch_size"]
    pairs = (("shape", "shape"), ("colour", "colour"), ("size", "size"), ("position", "position"),
             ("shape and colour, seen", "shape_and_colour"), ("shape and colour, never seen", "held_out_shape_and_colour"),
             ("colour on never-seen pairs", "held_out_colour"))
    get = lambda r, k: r[k] if k.startswith("held") else r["accuracy"][k]  # noqa: E731
    return (f"The last recipe once more on a GPU ({gp['meta']['machine'].split(',')[0]}, `--batch-size 512`, {t['steps']} "
            f"steps, {gp['meta']['seconds'] / 60:.1f} minutes on a GPU shared with other training runs): "
            f"{images / 1e6:.2f}M training images against the CPU run's {cpu_images / 1e6:.2f}M "
            f"({images / cpu_images:.0f}×), the same seed, data and recipe options (one run each; batch, images, device "
            "and torch version all differ). " +
            ", ".join(f"{label} {get(q, k):.1%} against {get(base, k):.1%}" for label, k in pairs) +
            f"; FD {q['fd_ratio']:.1f}× the floor against {base['fd_ratio']:.1f}×, recall {q['recall']:.2f} against "
            f"{base['recall']:.2f}. The text encoder is the same kind of pretrained, frozen encoder (token features: "
            f"colour word consistency {gp['ctx']['consistency']:.2f} against {tk['ctx']['consistency']:.2f}).")


if __name__ == "__main__":
    main()
