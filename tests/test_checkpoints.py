"""Checkpoints: safetensors + JSON + manifest round trip, hash and config checks with clear messages."""
import json

import pytest
import torch

from diffusion_course import UNet, UNetConfig
from diffusion_course.training.checkpoints import (
    CheckpointError,
    checkpoint_info,
    load_checkpoint,
    minutes_compare,
    read_manifest,
    save_checkpoint,
    trained_on_cpu,
)


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    cfg = UNetConfig(channels=(16, 32), time_dim=32)
    net = UNet(cfg)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.02)
    save_checkpoint("tiny", net, "unet", cfg.to_dict(), {"command": "test"}, directory=tmp_path)
    return tmp_path, net, cfg


def test_round_trip_gives_identical_outputs(saved):
    folder, net, cfg = saved
    loaded, info = load_checkpoint("tiny", expect=cfg, directory=folder)
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([3.0, 500.0])
    torch.testing.assert_close(loaded(x, t), net(x, t), rtol=0, atol=0)
    assert info["meta"]["command"] == "test" and not loaded.training
    manifest = json.loads((folder / "manifest.json").read_text())
    assert len(manifest["tiny"]["sha256"]) == 64
    assert not any(p.suffix in (".pt", ".pth", ".pkl", ".bin") for p in folder.iterdir())


def test_read_manifest_lists_saved_checkpoints_and_is_empty_without_one(saved, tmp_path_factory):
    folder, _, _ = saved
    entry = read_manifest(folder)["tiny"]
    assert entry["bytes"] == (folder / "tiny.safetensors").stat().st_size and len(entry["config_sha256"]) == 64
    assert read_manifest(tmp_path_factory.mktemp("empty")) == {}


def test_float16_storage_halves_the_file_and_loads_the_rounded_weights(saved, tmp_path):
    from diffusion_course.training.checkpoints import round_to_float16

    folder, net, cfg = saved
    half_dir = tmp_path / "half"
    save_checkpoint("tiny", net, "unet", cfg.to_dict(), {"command": "test"}, directory=half_dir, dtype=torch.float16)
    full, half = (json.loads((d / "manifest.json").read_text())["tiny"]["bytes"] for d in (folder, half_dir))
    assert half < 0.55 * full
    loaded, _ = load_checkpoint("tiny", expect=cfg, directory=half_dir)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())  # computed in float32, stored in float16
    rounded = round_to_float16(UNet(cfg).eval())
    rounded.load_state_dict(net.state_dict())
    round_to_float16(rounded)
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([3.0, 500.0])
    torch.testing.assert_close(loaded(x, t), rounded(x, t), rtol=0, atol=0)
    assert not torch.equal(loaded(x, t), net.eval()(x, t))  # the rounding is real


def test_a_changed_file_is_refused(saved):
    folder, _, _ = saved
    data = bytearray((folder / "tiny.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (folder / "tiny.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match the sha256"):
        checkpoint_info("tiny", folder)


def test_a_config_mismatch_names_the_fields(saved):
    folder, _, cfg = saved
    other = UNetConfig(channels=(16, 64), time_dim=32)
    with pytest.raises(CheckpointError, match=r"channels: expected \[16, 64\], checkpoint has \[16, 32\]"):
        load_checkpoint("tiny", expect=other, directory=folder)


def test_missing_checkpoints_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint named 'nope'"):
        load_checkpoint("nope", directory=tmp_path)


def test_a_config_field_the_checkpoint_predates_counts_as_its_default(tmp_path):
    cfg = UNetConfig(channels=(16, 32), time_dim=32)
    old = {k: v for k, v in cfg.to_dict().items() if k != "attention_position"}  # written before the field existed
    save_checkpoint("old", UNet(cfg), "unet", old, directory=tmp_path)
    load_checkpoint("old", expect=cfg, directory=tmp_path)  # absent = False, the default it was trained with
    with pytest.raises(CheckpointError, match="attention_position: expected True, checkpoint has False"):
        load_checkpoint("old", expect=UNetConfig(channels=(16, 32), time_dim=32, attention_position=True),
                        directory=tmp_path)


def test_a_config_field_this_package_does_not_know_is_refused_clearly(tmp_path):
    cfg = UNetConfig(channels=(16, 32), time_dim=32)
    save_checkpoint("new", UNet(cfg), "unet", {**cfg.to_dict(), "warp_drive": 9}, directory=tmp_path)
    with pytest.raises(CheckpointError, match="'new' has a config this package cannot build.*warp_drive"):
        load_checkpoint("new", directory=tmp_path)


def test_the_recorded_machine_is_the_device_used_and_says_whether_minutes_compare():
    from diffusion_course.recipes.records import machine

    cpu = machine("cpu")  # even on a machine with a GPU: a --device cpu run trained on the CPU
    assert cpu.startswith("CPU (") and f"torch {torch.__version__}" in cpu
    assert trained_on_cpu({"machine": cpu})
    assert not trained_on_cpu({"machine": "NVIDIA H200, torch 2.11.0+cu130, Python 3.12.3"})
    assert not trained_on_cpu({})  # no record: nothing to compare
    gpu = {"machine": "NVIDIA H200, torch 2.11.0+cu130, Python 3.12.3"}
    assert minutes_compare({"machine": cpu}, {"machine": cpu})
    assert not minutes_compare({"machine": cpu}, {"machine": cpu.replace("CPU (", "CPU (9")})  # another CPU
    assert not minutes_compare(gpu, gpu)  # a GPU's minutes depend on what shared it
    assert machine(torch.device("meta")).startswith("META, ")


def test_fine_tuned_from_follows_the_chain_of_starting_checkpoints(tmp_path):
    """The models a fine-tune started from, nearest first, read from the shipped JSONs; a loop is an error, not a hang."""
    from diffusion_course.training.checkpoints import fine_tuned_from
    assert [name for name, _ in fine_tuned_from(checkpoint_info("class")["meta"])] == ["uncond"]
    assert fine_tuned_from(checkpoint_info("uncond")["meta"]) == []
    assert fine_tuned_from({"init_from": None}) == []
    chain = fine_tuned_from({"init_from": "class"})
    assert [name for name, _ in chain] == ["class", "uncond"]
    assert chain[1][1]["seconds"] == checkpoint_info("uncond")["meta"]["seconds"]
    with pytest.raises(CheckpointError, match="no checkpoint named 'nope'"):
        fine_tuned_from({"init_from": "nope"})
    net = UNet(UNetConfig(channels=(8, 16), groups=4))
    for name, start in (("a", "b"), ("b", "a")):
        save_checkpoint(name, net, "unet", net.config.to_dict(), {"init_from": start}, directory=tmp_path)
    with pytest.raises(CheckpointError, match="loop"):
        fine_tuned_from({"init_from": "a"}, tmp_path)


def test_a_model_is_saved_as_the_kind_its_class_is_whatever_its_name():
    """The training command names each saved model's kind by kind_of, so a VAE saved as vae8 (or any name) is a vae."""
    from diffusion_course.evaluation.evaluator import Evaluator, EvaluatorConfig
    from diffusion_course.networks.text import TextEncoder, TextEncoderConfig
    from diffusion_course.networks.vae import VAE, VAEConfig
    from diffusion_course.networks.vae_decoder import VAEDecoder
    from diffusion_course.training.checkpoints import kind_of
    small = VAEConfig(block_out_channels=(8, 8), norm_num_groups=4, mid_attention=False, image_size=8)
    models = {"unet": UNet(UNetConfig(channels=(8, 16), groups=4, time_dim=16, attention_levels=())),
              "evaluator": Evaluator(EvaluatorConfig()), "text_encoder": TextEncoder(TextEncoderConfig()),
              "vae": VAE(small), "vae_decoder": VAEDecoder(small)}
    assert {kind: kind_of(model) for kind, model in models.items()} == {kind: kind for kind in models}
    with pytest.raises(ValueError, match="Linear is not a kind of model"):
        kind_of(torch.nn.Linear(2, 2))


def test_loading_leaves_the_global_rng_alone_except_where_recipes_load(saved):
    """Building the model to load into draws throwaway initial weights. A learner's seeded cell must draw the same
    numbers whether or not it loaded a checkpoint first; a recipe (run inside initialising_from_global_rng, as
    the training command runs it) must draw what it drew when the shipped checkpoints were trained: after the build's draws."""
    from diffusion_course.training.checkpoints import initialising_from_global_rng
    directory, _, cfg = saved
    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    load_checkpoint("tiny", directory=directory)
    assert torch.equal(torch.rand(4), expected)
    torch.manual_seed(3)
    UNet(cfg)  # what building the model draws
    after_build = torch.rand(4)
    assert not torch.equal(after_build, expected)
    torch.manual_seed(3)
    with initialising_from_global_rng():
        load_checkpoint("tiny", directory=directory)
    assert torch.equal(torch.rand(4), after_build)
    torch.manual_seed(3)
    load_checkpoint("tiny", directory=directory)  # the block is left: back to leaving the RNG alone
    assert torch.equal(torch.rand(4), expected)


def test_the_training_command_runs_a_recipe_with_loads_drawing_from_the_global_rng(saved, monkeypatch, tmp_path):
    from diffusion_course import recipes, train
    from diffusion_course.networks.vae import VAE, VAEConfig
    from diffusion_course.training import checkpoints
    seen = []

    def fake_vae_recipe(device, options):
        seen.append(checkpoints._INIT_FROM_GLOBAL_RNG)
        vae = VAE(VAEConfig(block_out_channels=(8, 8), norm_num_groups=4, mid_attention=False, image_size=8))
        return {"vae": vae}, {"steps": 1}

    monkeypatch.setitem(recipes.RECIPES, "vae", fake_vae_recipe)
    train.main(["vae", "--steps", "1", "--device", "cpu", "--out", str(tmp_path)])
    assert seen == [True] and not checkpoints._INIT_FROM_GLOBAL_RNG


def test_update_meta_changes_the_json_and_its_manifest_hash_and_leaves_the_weights(saved):
    from diffusion_course.training.checkpoints import WEIGHTS_DIR, update_meta

    folder, net, cfg = saved
    before = read_manifest(folder)["tiny"]
    entry = update_meta("tiny", {"quality": {"fd_ratio": 2.5}}, directory=folder)
    info = checkpoint_info("tiny", folder)  # both hashes verified against the new manifest
    assert info["meta"] == {"command": "test", "quality": {"fd_ratio": 2.5}}
    assert entry["sha256"] == before["sha256"] and entry["config_sha256"] != before["config_sha256"]
    loaded, _ = load_checkpoint("tiny", expect=cfg, directory=folder)
    torch.testing.assert_close(loaded.state_dict(), net.state_dict(), rtol=0, atol=0)
    with pytest.raises(CheckpointError, match="replace_shipped"):
        update_meta("uncond", {"x": 1}, directory=WEIGHTS_DIR)


def test_rejudge_refuses_a_checkpoint_with_no_quality_record():
    from diffusion_course import rejudge

    with pytest.raises(SystemExit):
        rejudge.main(["evaluator"])
    with pytest.raises(ValueError, match="no quality record"):
        from diffusion_course.recipes.rejudge import rejudge as measure
        measure("evaluator_clean")
