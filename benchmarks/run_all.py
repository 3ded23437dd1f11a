"""Run every benchmark in turn, each writing its own section of docs/benchmarks.md (`make benchmarks`).

    python -m benchmarks.run_all [--only NAME ...]

Several hours on a 2-core CPU: the U-Net design and U-Net-vs-diffusers benchmarks train models. Each
benchmark can also be run alone (see its docstring); a benchmark needing a checkpoint that is not
shipped says so and is skipped. Two studies, `text_init` and `latent_init`, read recorded runs of designs the course
does not ship; without those they stop with a message, and the others go on.
"""
from __future__ import annotations

import argparse
import importlib
import time

from diffusion_course.training.checkpoints import WEIGHTS_DIR

# (module, checkpoints it needs); order: cheap first
BENCHMARKS = [("data_throughput", []), ("time_to_quality", ["uncond"]), ("unet_vs_diffusers", []),
              ("unet_design", []), ("sampler_overhead", ["uncond"]), ("sampler_sweep", ["uncond"]),
              ("vae_factors", []), ("latent_vs_pixel", ["text_unet", "vae", "latent_unet"]),
              ("text_init", []), ("latent_init", ["vae"]), ("text_position", ["evaluator"]),
              ("class_guidance", ["class", "evaluator"]),
              ("latent_levers", ["vae", "vae_decoder_wide", "latent_unet", "latent_text_encoder",
                                                   "latent_refiner", "evaluator"]),
              ("evaluator_robustness", ["evaluator", "evaluator_clean", "class", "uncond", "text_unet", "vae", "vae_decoder_wide", "latent_unet"]),
              ("gpu_session", [])]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--only", nargs="*", default=None, help="benchmark module names to run")
    args = p.parse_args()
    for name, needs in BENCHMARKS:
        if args.only and name not in args.only:
            continue
        missing = [n for n in needs if not (WEIGHTS_DIR / f"{n}.safetensors").exists()]
        if missing:
            print(f"skipping {name}: it needs the checkpoint(s) {', '.join(missing)}, not shipped.")
            continue
        start = time.perf_counter()
        module = importlib.import_module(f"benchmarks.{name}")
        try:
            _run_without_args(module)  # each benchmark with its own defaults
        except SystemExit as stop:  # a study without its recorded runs: say why, and go on with the others
            print(f"{name} stopped: {stop}")
            continue
        print(f"{name}: {(time.perf_counter() - start) / 60:.1f} min")


def _run_without_args(module) -> None:
    import sys

    saved, sys.argv = sys.argv, [module.__name__]
    try:
        module.main()
    finally:
        sys.argv = saved


if __name__ == "__main__":
    main()
