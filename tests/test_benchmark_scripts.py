"""Every benchmark script imports, has a main(), and is run by `make benchmarks` (benchmarks/run_all.py)."""
import importlib
from pathlib import Path

import pytest

from benchmarks.run_all import BENCHMARKS

SCRIPTS = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py")
                 if p.stem not in ("__init__", "record", "run_all"))


@pytest.mark.parametrize("name", SCRIPTS)
def test_a_benchmark_imports_and_is_in_run_all(name):
    module = importlib.import_module(f"benchmarks.{name}")
    assert callable(module.main)
    assert name in {n for n, _ in BENCHMARKS}, f"benchmarks/run_all.py does not run {name}"
