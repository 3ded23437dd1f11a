"""Runtime helpers every layer uses: seeding, device choice, the fast/full switch, progress bars, comparing configs.

Every notebook's first cell calls `seed_everything`, `get_device` and `fast_mode`.
"""
from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

#: Environment variable that switches the course into fast mode (CI sets it to 1).
FAST_ENV_VAR = "DIFFUSION_COURSE_FAST"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def fast_mode() -> bool:
    """True when `DIFFUSION_COURSE_FAST` is set to 1/true/yes/on (CI); False by default (learners)."""
    value = os.environ.get(FAST_ENV_VAR, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"{FAST_ENV_VAR}={value!r} is not understood: use 1 (fast mode) or 0 (full mode)"
    )


def pick(full, fast):
    """Return `fast` in fast mode and `full` otherwise: `steps = pick(5000, 200)`."""
    return fast if fast_mode() else full


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a CPU `torch.Generator` seeded the same."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


def get_device(prefer: str | None = None) -> torch.device:
    """The best available device: CUDA, then Apple MPS, then CPU (or `prefer` if given)."""
    if prefer is not None:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def progress(iterable=None, **kwargs):
    """A text tqdm progress bar on stdout (readable in terminals, JupyterLab and saved notebooks).

    Plain text rather than a widget, so notebooks committed with outputs show the bar
    without needing widget state. Pass `disable=True` to silence it.
    """
    from tqdm.std import tqdm

    kwargs.setdefault("mininterval", 2.0)
    kwargs.setdefault("ncols", 100)
    kwargs.setdefault("file", sys.stdout)
    return tqdm(iterable, **kwargs)


class Timer:
    """Context manager measuring wall-clock seconds: `with Timer() as t: ...; t.seconds`."""

    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        self.seconds = float("nan")
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start


def randn(shape, generator: torch.Generator | None = None, device=None, dtype=torch.float32) -> torch.Tensor:
    """Standard normal noise drawn from `generator` on the generator's device, then moved to `device`.

    Draws are identical whatever `device` is, so CPU and GPU runs share their noise.
    """
    gen_device = generator.device if generator is not None else torch.device("cpu")
    return torch.randn(tuple(shape), generator=generator, device=gen_device, dtype=dtype).to(device or gen_device)


def randint(high: int, shape, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """Uniform integers in [0, high) from `generator`, moved to `device` (see `randn`)."""
    gen_device = generator.device if generator is not None else torch.device("cpu")
    return torch.randint(0, high, tuple(shape), generator=generator, device=gen_device).to(device or gen_device)


def recorded_result(name: str) -> dict:
    """The JSON a benchmark script wrote to `benchmarks/results/<name>.json` in the course repository.

    Notebooks show heavy sweeps from these files, labelled as recorded. The repository root is found from this
    package's location (an editable install from `src/`, as `make lab` sets up).
    """
    here = Path(__file__).resolve()
    for root in here.parents:
        path = root / "benchmarks" / "results" / f"{name}.json"
        if path.is_file():
            return json.loads(path.read_text())
        if (root / "pyproject.toml").is_file():
            break
    raise FileNotFoundError(f"no recorded result {name!r}: run `python -m benchmarks.{name}` from the course "
                            f"repository (the package must be installed from its src/ folder)")


def json_round_trip(config: dict) -> dict:
    """JSON round trip, so tuples and lists compare equal."""
    return json.loads(json.dumps(config))


def config_differences(expected: dict, actual: dict) -> list[str]:
    """Human-readable list of the fields where two configs differ."""
    e, a = json_round_trip(expected), json_round_trip(actual)
    return [f"{k}: expected {e.get(k, '<absent>')!r}, checkpoint has {a.get(k, '<absent>')!r}"
            for k in sorted(set(e) | set(a)) if e.get(k, "<absent>") != a.get(k, "<absent>")]
