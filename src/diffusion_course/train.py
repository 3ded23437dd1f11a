"""The command line that trains every shipped checkpoint: `python -m diffusion_course.train RECIPE [options]`.

    python -m diffusion_course.train evaluator   # the attribute classifier every quality number uses
    python -m diffusion_course.train evaluator_clean  # the same network trained on clean renders only (comparison)
    python -m diffusion_course.train uncond      # unconditional pixel U-Net (lesson 04)
    python -m diffusion_course.train class       # class-conditional U-Net, fine-tuned from uncond (lesson 06)
    python -m diffusion_course.train text --pretrain-encoder --token-targets --frozen-encoder --init-from class  # (07)
    python -m diffusion_course.train vae         # the VAE of the latent models (lesson 08)
    python -m diffusion_course.train latent --pretrain-encoder --token-targets --frozen-encoder  # mini SD on latents (08)
    python -m diffusion_course.train vae_decoder  # the VAE's decoder fine-tuned under the latent model (08)
    python -m diffusion_course.train vae_decoder_wide --out runs/wide  # vae_decoder widened 2x and fine-tuned, then
    python -m diffusion_course.train vae_decoder_wide --continue-from runs/wide/vae_decoder_wide  # its second cycle
    python -m diffusion_course.train latent_refiner  # the latent U-Net's low-noise expert (08)

Each recipe fixes its seed, data and settings (diffusion_course/recipes/), trains, measures quality and writes
safetensors + JSON (the command, the training time, the measured numbers) into --out, updating that folder's manifest.
docs/checkpoints.md lists the command behind each shipped checkpoint.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from .recipes import RECIPES, RunOptions, train_evaluator
from .recipes.configs import CLEAN_EVALUATOR_EPOCHS, EVALUATOR_EPOCHS, VAE_CONFIG
from .recipes.latent import vae_name
from .recipes.records import machine
from .runtime import get_device
from .training.checkpoints import WEIGHTS_DIR, initialising_from_global_rng, is_shipped_folder, kind_of, save_checkpoint
from .training.files import atomic_write_text

#: U-Nets, text encoders and the VAE are shipped in float16 (half the bytes; the shipped set must stay near 25 MB). `_fit`
#: rounds the trained weights to float16 precision before any quality measurement, so what is measured is what ships.
STORED_AS = {"unet": torch.float16, "text_encoder": torch.float16, "vae": torch.float16, "vae_decoder": torch.float16}


def parser() -> argparse.ArgumentParser:
    """The command line's options."""
    p = argparse.ArgumentParser(prog="python -m diffusion_course.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe", choices=["evaluator", "evaluator_clean", *RECIPES])
    p.add_argument("--steps", type=_count(1), default=None,
                   help="override the number of training steps (the evaluator: epochs)")
    p.add_argument("--batch-size", type=_count(1), default=None, help="override the batch size")
    p.add_argument("--minutes", type=_positive_float, default=None,
                   help="train for about this many minutes instead of a step count (the JSON records the steps chosen)")
    p.add_argument("--sample-every", type=_count(0), default=None,
                   help="judge samples every this many steps (0 = never)")
    p.add_argument("--from-scratch", action="store_true", help="class/text: random initial weights, not uncond's")
    p.add_argument("--init-from", choices=["uncond", "class"], default="uncond",
                   help="text: the shipped U-Net it starts from (default uncond; class leaves its label embedding behind)")
    p.add_argument("--frozen-encoder", action="store_true",
                   help="text, latent: keep the text encoder where it starts, training only the U-Net (the shipped text model)")
    p.add_argument("--pretrain-encoder", action="store_true",
                   help="text, latent: first teach the text encoder to read the captions' attributes (the shipped text model)")
    p.add_argument("--token-targets", action="store_true",
                   help="with --pretrain-encoder: each token's feature must also keep its own word (the shipped text model)")
    p.add_argument("--latent-channels", type=_count(1), default=None,
                   help="vae: channels of the 8x8 latents (default 4, the shipped VAE's)")
    p.add_argument("--vae", default=None,
                   help="latent: the VAE whose latents it trains on: a shipped one (default vae) or the path of one a vae run wrote "
                        "elsewhere, e.g. runs/vae8/vae8")
    p.add_argument("--continue-from", default=None,
                   help="vae_decoder_wide: its second cycle, fine-tuning on from the wide decoder a first run wrote "
                        "(e.g. runs/wide/vae_decoder_wide: the shipped decoder's command)")
    p.add_argument("--out", type=Path, default=None,
                   help="the run folder: checkpoints, manifest and resumable state (default: runs/RECIPE)")
    p.add_argument("--replace-shipped", action="store_true",
                   help="write into the package's shipped weights folder, replacing the course's checkpoint (on purpose "
                        "only: without it that folder is refused)")
    p.add_argument("--checkpoint-every", type=_count(1), default=250,
                   help="save a resumable state in the run folder every this many steps (default 250)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from the state it saved in its run folder (same options)")
    p.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
    return p


def _check(args: argparse.Namespace, p: argparse.ArgumentParser) -> None:
    """Refuse option combinations a recipe does not take, with one clear message."""
    if args.from_scratch and args.recipe not in ("class", "text"):
        p.error("--from-scratch applies to the class and text recipes (the others start from random weights)")
    if args.init_from != "uncond" and args.recipe != "text":
        p.error("--init-from applies to the text recipe (the class recipe starts from uncond)")
    if args.init_from != "uncond" and args.from_scratch:
        p.error("--init-from and --from-scratch contradict each other: pick one start")
    for flag in ("frozen_encoder", "pretrain_encoder"):
        if getattr(args, flag) and args.recipe not in ("text", "latent"):
            p.error(f"--{flag.replace('_', '-')} applies to the text and latent recipes (the ones with a text encoder)")
    if args.token_targets and not args.pretrain_encoder:
        p.error("--token-targets changes the text encoder's pretraining in the text and latent recipes: it needs "
                "--pretrain-encoder")
    if args.latent_channels is not None and args.recipe != "vae":
        p.error("--latent-channels applies to the vae recipe (the latent recipes read theirs from the shipped VAE)")
    if args.latent_channels is not None and args.latent_channels < 1:
        p.error(f"--latent-channels must be a positive count, got {args.latent_channels}")
    if args.vae is not None and args.recipe != "latent":
        p.error("--vae applies to the latent recipe (the decoder and refiner recipes follow the shipped latent U-Net)")
    if args.continue_from is not None and args.recipe != "vae_decoder_wide":
        p.error("--continue-from applies to the vae_decoder_wide recipe (its second cycle)")
    if args.recipe.startswith("evaluator") and (args.minutes or args.batch_size or args.sample_every is not None):
        p.error(f"the {args.recipe} recipe takes --steps only")
    if args.recipe in ("vae_decoder", "vae_decoder_wide") and args.minutes is not None:
        p.error(f"the {args.recipe} recipe takes --steps, --batch-size and --sample-every (no time budget)")
    if args.recipe == "vae" and args.sample_every is not None:
        p.error("the vae recipe takes --steps, --batch-size and --minutes (it draws no samples while training)")
    if args.replace_shipped and args.out is not None and not is_shipped_folder(args.out):
        p.error("--replace-shipped writes into the shipped weights folder: it does not go with --out")
    if args.out is not None and is_shipped_folder(args.out) and not args.replace_shipped:
        p.error(f"--out {args.out} is the course's shipped weights folder: pass --replace-shipped to overwrite its "
                "checkpoints on purpose, or choose another folder")


def _count(low: int):
    """An argparse type: an int of at least `low`, refused with one sentence otherwise."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def run_folder(args: argparse.Namespace, p: argparse.ArgumentParser) -> Path:
    """The folder the run writes to (runs/RECIPE unless --out or --replace-shipped say otherwise), checked writable
    before any training starts."""
    out = WEIGHTS_DIR if args.replace_shipped else args.out if args.out is not None else Path("runs") / args.recipe
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        atomic_write_text(probe, "ok")
        probe.unlink()
    except OSError as e:
        p.error(f"cannot write to the run folder {out}: {e.strerror or e}")
    return out


def main(argv=None) -> None:
    p = parser()
    args = p.parse_args(argv)
    device = get_device(args.device)
    command = "python -m diffusion_course.train " + " ".join(w for w in (sys.argv[1:] if argv is None else argv)
                                                             if w != "--resume")
    t0 = time.perf_counter()
    _check(args, p)
    out = run_folder(args, p)
    options = RunOptions(steps=args.steps, batch_size=args.batch_size, sample_every=args.sample_every,
                         minutes=args.minutes, from_scratch=args.from_scratch,
                         frozen_encoder=args.frozen_encoder, pretrain_encoder=args.pretrain_encoder,
                         token_targets=args.token_targets, init_from=args.init_from,
                         latent_channels=args.latent_channels, vae=args.vae, continue_from=args.continue_from,
                         run_dir=out, checkpoint_every=args.checkpoint_every, resume=args.resume)
    try:
        state = options.run_state(_state_name(args))  # refuses --resume when there is no state to resume from
    except FileNotFoundError as e:
        p.error(str(e))
    models, meta = _run(args, options, device)
    if args.resume:
        meta["resumed"] = "from the state the interrupted run saved (the same steps as an uninterrupted run)"
    if args.minutes is not None:  # the step count the budget chose reproduces the run
        meta["reproduce"] = _with_steps(command, meta.get("train", meta)["steps"])  # the VAE records steps at the top
    meta.update({"command": command, "total_seconds": round(time.perf_counter() - t0, 1), "machine": machine(device)})
    for name, model in models.items():
        kind = kind_of(model)  # from the model's class, whatever its name (the vae recipe's vae8 is a vae)
        dtype = STORED_AS.get(kind) if meta.get("stored_as") == "float16" else None
        entry = save_checkpoint(name, model, kind, model.config.to_dict(), meta, directory=out, dtype=dtype,
                                replace_shipped=args.replace_shipped)
        print(f"saved {out / name}.safetensors ({entry['bytes'] / 1e6:.2f} MB, sha256 {entry['sha256'][:12]}…)")
    state.discard()  # the result is saved: nothing left to resume


def _state_name(args: argparse.Namespace) -> str:
    """The name the recipe saves its resumable state under (the vae recipe's VAE is named by its channels)."""
    return vae_name(args.latent_channels or VAE_CONFIG.latent_channels) if args.recipe == "vae" else args.recipe


def _run(args: argparse.Namespace, options: RunOptions, device) -> tuple[dict, dict]:
    """({checkpoint name: model}, meta) from the recipe the command line names."""
    if args.recipe.startswith("evaluator"):
        robust = args.recipe == "evaluator"
        epochs = args.steps or (EVALUATOR_EPOCHS if robust else CLEAN_EVALUATOR_EPOCHS)
        model, acc = train_evaluator(device, epochs=epochs, state=options.run_state(args.recipe), robust=robust)
        print("test accuracy:", {k: round(v, 4) for k, v in acc.items()})
        return {args.recipe: model}, {"test_accuracy": acc}
    with initialising_from_global_rng():  # loads draw from the global RNG as when the shipped weights were trained
        return RECIPES[args.recipe](device, options)


def _with_steps(command: str, steps: int) -> str:
    """`command` with its --minutes (and any --steps) replaced by `--steps STEPS`."""
    out, words = [], iter(command.split())
    for w in words:
        if w in ("--minutes", "--steps"):
            next(words, None)
        elif not w.startswith(("--minutes=", "--steps=")):
            out.append(w)
    return " ".join(out) + f" --steps {steps}"


def __getattr__(name: str):  # this module used to hold the training loop: its names are deprecated here
    from ._moved import resolve

    return resolve("train", name)


if __name__ == "__main__":
    main()
