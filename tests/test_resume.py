"""Runs never lose work: they go to a run folder (never over the shipped weights unless asked), save a resumable
state, and a run killed partway and resumed ends with exactly the weights of an uninterrupted one."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from diffusion_course import recipes, train
from diffusion_course.networks.vae import VAE, VAEConfig
from diffusion_course.training.checkpoints import WEIGHTS_DIR, CheckpointError, read_manifest, save_checkpoint, sha256

HERE = Path(__file__).resolve().parent
TINY = ["vae", "--steps", "120", "--batch-size", "8", "--device", "cpu", "--checkpoint-every", "20"]


def _run(out: Path, *extra: str, wait: bool = True) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "tiny_vae_run", *TINY, "--out", str(out), *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if wait:
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, output
    return proc


def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path):
    _run(tmp_path / "whole")
    killed = _run(tmp_path / "killed", wait=False)
    state = tmp_path / "killed" / "vae.state.safetensors"
    deadline = time.monotonic() + 240
    while not state.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state.exists(), "the run saved no resumable state before it ended"
    killed.send_signal(signal.SIGKILL)  # a real kill: no clean-up runs
    killed.wait()
    assert not (tmp_path / "killed" / "vae.safetensors").exists()  # it did not get to the end
    _run(tmp_path / "killed", "--resume")
    assert sha256(tmp_path / "killed" / "vae.safetensors") == sha256(tmp_path / "whole" / "vae.safetensors")
    meta = json.loads((tmp_path / "killed" / "vae.json").read_text())["meta"]
    assert "resumed" in meta and "--resume" not in meta["command"]
    assert not state.exists()  # the result is saved: nothing left to resume


def _fake_vae_recipe(device, options):
    vae = VAE(VAEConfig(block_out_channels=(8, 8), norm_num_groups=4, mid_attention=False, image_size=8))
    return {"vae": vae}, {"steps": 1}


def test_a_run_writes_to_its_run_folder_and_never_over_the_shipped_weights(tmp_path, monkeypatch):
    monkeypatch.setitem(recipes.RECIPES, "vae", _fake_vae_recipe)
    monkeypatch.chdir(tmp_path)
    shipped = {name: entry["sha256"] for name, entry in read_manifest().items()}
    train.main(["vae", "--steps", "1", "--device", "cpu"])
    assert (tmp_path / "runs" / "vae" / "vae.safetensors").exists()
    assert {name: entry["sha256"] for name, entry in read_manifest().items()} == shipped
    with pytest.raises(SystemExit):
        train.main(["vae", "--steps", "1", "--device", "cpu", "--out", str(WEIGHTS_DIR)])
    with pytest.raises(CheckpointError, match="--replace-shipped"):
        save_checkpoint("vae", _fake_vae_recipe(None, None)[0]["vae"], "vae", {}, directory=WEIGHTS_DIR)


def test_an_unwritable_run_folder_or_nothing_to_resume_is_refused_before_training(tmp_path, monkeypatch, capsys):
    called = []
    monkeypatch.setitem(recipes.RECIPES, "vae", lambda *a: called.append(1))
    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(SystemExit):
        train.main(["vae", "--device", "cpu", "--out", str(tmp_path / "a_file" / "run")])
    assert "cannot write to the run folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train.main(["vae", "--device", "cpu", "--out", str(tmp_path / "empty"), "--resume"])
    assert "nothing to resume" in capsys.readouterr().err
    assert not called


def test_saving_refuses_non_finite_weights(tmp_path):
    vae = _fake_vae_recipe(None, None)[0]["vae"]
    with torch.no_grad():
        next(vae.parameters())[0] = float("nan")
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        save_checkpoint("vae", vae, "vae", vae.config.to_dict(), directory=tmp_path)
    assert not (tmp_path / "vae.safetensors").exists()


def test_two_runs_saving_into_one_folder_both_keep_their_manifest_entries(tmp_path):
    import threading

    vae = _fake_vae_recipe(None, None)[0]["vae"]
    names = [f"vae{i}" for i in range(12)]
    threads = [threading.Thread(target=save_checkpoint, args=(n, vae, "vae", vae.config.to_dict()),
                                kwargs={"directory": tmp_path}) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(read_manifest(tmp_path)) == sorted(names)
    assert not list(tmp_path.glob("*.tmp")) and not (tmp_path / "manifest.json.lock").exists()


def test_saving_a_resumable_state_draws_no_random_numbers(tmp_path):
    from diffusion_course.training.state import RunState

    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters())
    net(torch.ones(1, 3)).sum().backward()
    opt.step()
    before = torch.random.get_rng_state()
    RunState(tmp_path / "x.state.safetensors", every=1).save(1, {"net": net}, {"opt": opt},
                                                             {"global": torch.default_generator})
    assert torch.equal(torch.random.get_rng_state(), before)


def test_a_recipes_curves_travel_with_its_resumable_state(tmp_path):
    from diffusion_course.recipes.options import RunOptions

    net, rows = torch.nn.Linear(2, 2), [{"step": 1, "fd": 9.0}]
    state = RunOptions(run_dir=tmp_path).run_state("x", quality_during_training=rows, not_measured=None)
    state.save(1, {"net": net}, {}, {})
    refilled = []
    resumed = RunOptions(run_dir=tmp_path, resume=True).run_state("x", quality_during_training=refilled)
    assert resumed.restore({"net": torch.nn.Linear(2, 2)}, {}, {}) == (1, {"tracked": {"quality_during_training": rows}})
    assert refilled == rows
