"""Write the table of shipped checkpoints in docs/checkpoints.md from the checkpoints' own JSON records.

    python docs/make_checkpoints_table.py          # rewrite the table in place
    python docs/make_checkpoints_table.py --check  # exit 1 if the committed table differs from the JSONs

Each row comes from src/diffusion_course/weights/NAME.json (its `meta`: the command that reproduces it, its training
seconds and machine, its recorded quality) and manifest.json (its size). Only the one-line descriptions in `WHAT` are
written by hand. The table sits between `<!-- checkpoints:table -->` and `<!-- /checkpoints:table -->`; the rest of the
page is left alone. Needs only the standard library.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "src" / "diffusion_course" / "weights"
PAGE = ROOT / "docs" / "checkpoints.md"
START, END = "<!-- checkpoints:table -->", "<!-- /checkpoints:table -->"

#: one line per checkpoint: what it is (the rest of each row is read from its JSON)
WHAT = {
    "evaluator": "attribute classifier (shape, colour, size, position, background), trained through image defects (noise, "
                 "blur, colour shifts, JPEG-like blocks): judges every model's samples",
    "evaluator_clean": "the same classifier trained on clean renders only: kept for comparison (it judged the curves "
                       "recorded during training)",
    "uncond": "unconditional pixel U-Net, widths (16, 32, 64), no patches (notebook 04)",
    "class": "class-conditional pixel U-Net: `uncond` fine-tuned with a label embedding, label dropped 15% of the time "
             "(notebook 06)",
    "text_unet": "text-conditional pixel U-Net: `class`'s U-Net fine-tuned with cross-attention and the pooled caption "
                 "in its time embedding (notebook 07)",
    "text_encoder": "`text_unet`'s word-level Transformer text encoder: pretrained on the captions, then frozen",
    "vae": "KL-VAE (the `AutoencoderKL` blueprint), 32×32×3 → 8×8×4 latents, scale factor measured on data (notebook 08)",
    "vae_decoder": "`vae`'s decoder fine-tuned with the encoder frozen (as `sd-vae-ft-mse`): the latents stay valid",
    "vae_decoder_wide": "`vae_decoder` widened 2× (`widen_decoder`, an exact copy at the start) and fine-tuned on, "
                        "encoder frozen",
    "latent_unet": "the mini Stable Diffusion's U-Net on `vae` latents, widths (32, 64), attention at 4×4",
    "latent_text_encoder": "`latent_unet`'s text encoder, pretrained on the captions like `text_encoder`, then frozen",
    "latent_refiner": "low-noise expert (eDiff-I, SDXL's refiner): `latent_unet` grown and fine-tuned on t < 300; "
                      "sampling hands it every step below",
}
ORDER = list(WHAT)
#: checkpoints written by another checkpoint's run (their JSON repeats that run's record)
TRAINED_WITH = {"text_encoder": "text_unet", "latent_text_encoder": "latent_unet"}


def without_out(command: str) -> str:
    """`command` without its `--out DIR` (where a run wrote its checkpoint is not part of the recipe)."""
    return re.sub(r" --out \S+", "", command)


def reproduce(meta: dict) -> str:
    """The command that reproduces the checkpoint: its `reproduce`, else its `command` without `--out`; a second cycle
    continued from a first run gives both commands (the first keeps its `--out`: the second reads from there)."""
    if "first_cycle" in meta:
        return f"`{meta['first_cycle']['command']}`, then `{without_out(meta['command'])}`"
    return f"`{meta.get('reproduce') or without_out(meta['command'])}`"


def machine(meta: dict) -> str:
    m = meta.get("machine", "")
    return "CPU" if m.startswith("CPU") else (f"GPU, {m.split(',')[0]}" if m else "machine not recorded")


def minutes(meta: dict) -> str:
    """Training time from the record: `seconds` (training alone), else `total_seconds`; both cycles of a second one."""
    seconds = meta.get("seconds", meta.get("total_seconds"))
    if "first_cycle" in meta:
        return f"{meta['first_cycle']['seconds'] / 60:.0f} + {seconds / 60:.0f} min ({machine(meta)})"
    return f"{seconds / 60:.0f} min ({machine(meta)})"


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def text_quality(q: dict, what: str = "") -> str:
    """Shape and colour both right on seen / held-out pairs, the background word followed (seen pairs), and FD, from a
    text model's recorded quality."""
    return (f"{what}shape and colour {pct(q['accuracy']['shape_and_colour'])} seen / "
            f"{pct(q['held_out_shape_and_colour'])} held-out pairs (w = {q['guidance']:g}, n = {q['samples']} each), "
            f"background {pct(q['accuracy']['background'])}, FD {q['fd_ratio']:.1f}× floor")


def recon(r: dict) -> str:
    return f"reconstructions: PSNR {r['psnr_db']:.1f} dB, shape kept {pct(r['accuracy']['shape'])}, FD {r['fd_ratio']:.1f}× floor"


def headline(name: str, meta: dict) -> str:
    """One or two headline numbers from the checkpoint's recorded quality."""
    if name.startswith("evaluator"):
        acc = meta["test_accuracy"]
        return "held-out accuracy: " + ", ".join(f"{k} {pct(acc[k])}" for k in ("shape", "colour", "size", "position",
                                                                                   "background"))
    if name == "uncond":
        q = meta["quality"]
        return f"FD {q['fd_ratio']:.1f}× floor, recognised {pct(q['recognised'])} (n = {q['samples']})"
    if name == "class":
        q = meta["quality"]
        return (f"requested shape {pct(q['accuracy']['shape'])} at w = {q['guidance']:g}, FD {q['fd_ratio']:.1f}× floor "
                f"(n = {q['samples']})")
    if name in ("text_encoder", "latent_text_encoder"):
        pre = meta["text_encoder_pretraining"]
        words = ", and each token's own word" if pre.get("token_targets") else ""
        low = min(pre["accuracy"].values())
        return (f"after its {pre['steps']}-step pretraining it reads every attribute back from the pooled caption{words}: "
                + ("all at 100.0%" if low == 1 else f"each at {pct(low)} or better"))
    if name in ("text_unet", "latent_unet"):
        return text_quality(meta["quality"])
    if name == "vae":
        return recon(meta["reconstruction"])
    if name == "vae_decoder":
        return recon(meta["reconstruction"])
    if name == "vae_decoder_wide":
        return (recon(meta["reconstruction"]) + "; " +
                text_quality(meta["latent_model_quality"], "`latent_unet` + `latent_refiner` drawn by it: "))
    if name == "latent_refiner":
        return (text_quality(meta["quality"], "with `latent_unet` above the switch: ") + "; drawn by `vae_decoder`: "
                + text_quality(meta["quality_fine_tuned_decoder"]))
    raise KeyError(f"no headline for {name!r}: add it to headline() and WHAT")


def table() -> str:
    manifest = json.loads((WEIGHTS / "manifest.json").read_text())
    unknown = sorted(set(manifest) - set(ORDER))
    if unknown:
        raise SystemExit(f"manifest.json lists checkpoints with no description in WHAT: {unknown}")
    rows = ["| checkpoint | what it is | reproduce with | training time | recorded quality |", "|---|---|---|---|---|"]
    for name in (n for n in ORDER if n in manifest):
        meta = json.loads((WEIGHTS / f"{name}.json").read_text())["meta"]
        size = manifest[name]["bytes"] / 1e6
        what = f"{WHAT[name]}; {size:.1f} MB" + (", float16" if meta.get("stored_as") == "float16" else "")
        if name in TRAINED_WITH:
            time = f"in `{TRAINED_WITH[name]}`'s run"
        else:
            time = minutes(meta)
        rows.append(f"| `{name}` | {what} | {reproduce(meta)} | {time} | {headline(name, meta)} |")
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true", help="only check that the committed table is current")
    args = p.parse_args()
    page = PAGE.read_text()
    if START not in page or END not in page:
        raise SystemExit(f"{PAGE} has no {START} ... {END} block")
    head, rest = page.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{table()}\n{END}{tail}"
    if args.check:
        if new != page:
            print(f"{PAGE.relative_to(ROOT)} is out of date: run python docs/make_checkpoints_table.py")
            sys.exit(1)
        print(f"{PAGE.relative_to(ROOT)} is current")
        return
    PAGE.write_text(new)
    print(f"wrote the table of {PAGE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
