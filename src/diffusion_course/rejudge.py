"""The command line that judges the shipped checkpoints again with the shipped evaluator (recipes/rejudge.py):

    python -m diffusion_course.rejudge                      # every checkpoint: records written to runs/rejudge/
    python -m diffusion_course.rejudge uncond class         # some of them
    python -m diffusion_course.rejudge --replace-shipped    # write the records into the shipped JSONs and manifest

Weights are not touched; only the final quality records in each checkpoint's JSON meta (and `judged_by`; the first time,
the records they replace are kept under `records_by_evaluator_clean`).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .recipes.rejudge import REJUDGE, rejudge
from .runtime import get_device
from .training.checkpoints import WEIGHTS_DIR, checkpoint_info, update_meta
from .training.files import atomic_write_text

#: checkpoints saved by one recipe run carry one record: it is measured once and written into each
SHARED = {"text_encoder": "text_unet", "latent_text_encoder": "latent_unet"}


def earlier_records(name: str, records: dict) -> dict:
    """The first time a checkpoint is re-judged, the records `evaluator_clean` measured, kept under
    `records_by_evaluator_clean` for the studies that compare the shipped model with runs that judge measured."""
    meta = checkpoint_info(name)["meta"]
    if "judged_by" in meta:
        return {}
    return {"records_by_evaluator_clean": {k: meta[k] for k in records if k in meta}}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m diffusion_course.rejudge", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", metavar="NAME",
                   help=f"checkpoints to judge (default: all of {', '.join(sorted(REJUDGE))})")
    p.add_argument("--replace-shipped", action="store_true",
                   help="write the new records into the shipped JSONs (default: runs/rejudge/NAME.json only)")
    p.add_argument("--out", type=Path, default=Path("runs") / "rejudge", help="where records go without --replace-shipped")
    p.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
    args = p.parse_args(argv)
    unknown = [n for n in args.names if n not in REJUDGE]
    if unknown:
        p.error(f"no quality record to re-judge for {', '.join(map(repr, unknown))}; choose from {', '.join(sorted(REJUDGE))}")
    device = get_device(args.device)
    measured: dict[str, dict] = {}
    for name in args.names or sorted(REJUDGE):
        t0 = time.perf_counter()
        source = SHARED.get(name, name)
        if source not in measured:
            measured[source] = rejudge(source, device)
        records = measured[source]
        if args.replace_shipped:
            update_meta(name, {**records, **earlier_records(name, records)}, WEIGHTS_DIR, replace_shipped=True)
            where = f"{name}.json (shipped)"
        else:
            args.out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(args.out / f"{name}.json", json.dumps(records, indent=2) + "\n")
            where = str(args.out / f"{name}.json")
        print(f"{name}: records written to {where} ({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
