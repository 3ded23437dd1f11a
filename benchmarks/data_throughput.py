"""Benchmark: how many shapes images per second the generator renders on this machine (target ≥ 5,000/s).

Run: `python -m benchmarks.data_throughput`. Medians of 7 timed runs of 10,000 images each, after a warm-up.
"""
from __future__ import annotations

import os
import time

import torch

from benchmarks.record import median, record
from diffusion_course.data.shapes import ShapesDataset, make_shapes

N_IMAGES = 10_000
RUNS = 7


def _rate(fn) -> tuple[float, list[float]]:
    """Median images/s of `fn` (which renders N_IMAGES images) over RUNS runs, after one warm-up run."""
    fn()
    rates = []
    for _ in range(RUNS):
        start = time.perf_counter()
        fn()
        rates.append(N_IMAGES / (time.perf_counter() - start))
    return median(rates), rates


def _loader_epoch() -> None:
    """One shuffled pass over a 10,000-image ShapesDataset through a DataLoader (batches of 256, no workers)."""
    loader = torch.utils.data.DataLoader(ShapesDataset(N_IMAGES), batch_size=256, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    for _ in loader:
        pass


def main() -> None:
    torch.set_num_threads(os.cpu_count() or 1)
    cases = [
        ("`make_shapes(10_000)`: images, labels, attributes, captions", lambda: make_shapes(N_IMAGES, "train", 0)),
        ("`DataLoader(ShapesDataset(10_000), batch_size=256, shuffle=True)`, one epoch", _loader_epoch),
    ]
    rows = []
    for label, fn in cases:
        rate, rates = _rate(fn)
        spread = f"{min(rates):,.0f} to {max(rates):,.0f}"
        rows.append(f"| {label} | **{rate:,.0f}** | {spread} |")
        print(f"{label}: median {rate:,.0f} images/s ({spread})")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    body = "\n".join([
        f"Images per second rendering the built-in 32×32 shapes dataset (median of {RUNS} runs of "
        f"{N_IMAGES:,} images; target ≥ 5,000/s). Load average (1, 5, 15 min) when measured: {load}; "
        "other processes shared the machine, so these are lower bounds. The renderer runs on one thread "
        "whatever torch's setting (threads only wait on its cache-sized chunks); DataLoader workers add more.",
        "",
        "| what | images/s (median) | range over runs |",
        "|---|---:|---:|",
        *rows,
    ])
    record("data_throughput", "Shapes dataset throughput", "python -m benchmarks.data_throughput", body)


if __name__ == "__main__":
    main()
