"""Seeding, device choice, the fast-mode switch and the shared noise helpers."""
import json
from pathlib import Path

import pytest
import torch

import diffusion_course as dc
from diffusion_course import fast_mode, get_device, pick, seed_everything
from diffusion_course.runtime import FAST_ENV_VAR, randn


def test_fast_mode_reads_the_environment(monkeypatch):
    monkeypatch.setenv(FAST_ENV_VAR, "1")
    assert fast_mode() and pick(100, 5) == 5
    monkeypatch.setenv(FAST_ENV_VAR, "0")
    assert not fast_mode() and pick(100, 5) == 100
    monkeypatch.delenv(FAST_ENV_VAR)
    assert not fast_mode()
    monkeypatch.setenv(FAST_ENV_VAR, "maybe")
    with pytest.raises(ValueError, match=FAST_ENV_VAR):
        fast_mode()


def test_seed_everything_makes_torch_repeatable():
    g = seed_everything(123)
    a, ga = torch.rand(3), torch.rand(3, generator=g)
    g = seed_everything(123)
    assert torch.equal(a, torch.rand(3)) and torch.equal(ga, torch.rand(3, generator=g))
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)


def test_get_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    assert get_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert get_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert get_device().type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert get_device().type == "cpu"


def test_randn_draws_from_the_generator():
    a = randn((2, 3), torch.Generator().manual_seed(0))
    b = randn((2, 3), torch.Generator().manual_seed(0), device="cpu", dtype=torch.float64)
    assert a.shape == (2, 3) and torch.allclose(a.double(), b)


def test_recorded_result_names_the_command_that_makes_it():
    with pytest.raises(FileNotFoundError, match=r"python -m benchmarks\.no_such_sweep"):
        dc.recorded_result("no_such_sweep")


def test_recorded_results_in_the_repo_load():
    results = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
    names = sorted(p.stem for p in results.glob("*.json"))
    assert "sampler_sweep" in names  # notebook 05 plots it
    for name in names:
        assert dc.recorded_result(name) == json.loads((results / f"{name}.json").read_text())
