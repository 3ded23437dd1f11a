"""The image training loop: learning-rate schedule, EMA, condition dropout, resuming."""
import json

import pytest
import torch

from diffusion_course import NoiseSchedule, UNet, UNetConfig
from diffusion_course.training.loop import (
    EMA,
    TrainConfig,
    batches_from_tensors,
    lr_at,
    train_diffusion,
)
from diffusion_course.training.state import RunState


def test_lr_warms_up_then_decays_to_the_floor():
    cfg = TrainConfig(steps=1000, lr=1e-3, warmup=100, min_lr_frac=0.1)
    assert lr_at(0, cfg) == pytest.approx(1e-5)
    assert lr_at(99, cfg) == pytest.approx(1e-3)
    assert lr_at(550, cfg) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))
    assert lr_at(1000, cfg) == pytest.approx(1e-4)
    lrs = [lr_at(s, cfg) for s in range(100, 1000)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_ema_follows_the_formula():
    net = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(net.weight)
    ema = EMA(net, decay=0.9)
    with torch.no_grad():
        net.weight.fill_(1.0)
    ema.update(net)  # decay min(0.9, 2/11)
    assert float(ema.model.weight) == pytest.approx(1 - 2 / 11)
    for _ in range(200):
        ema.update(net)
    assert float(ema.model.weight) == pytest.approx(1.0, abs=1e-6)


def _tiny():
    torch.manual_seed(0)
    return UNet(UNetConfig(channels=(16, 32), image_size=16, time_dim=32, num_classes=3))


def test_training_lowers_the_loss_and_drops_conditions():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(32, 3, 16, 16, generator=g) * 2 - 1
    labels = torch.randint(0, 3, (32,), generator=g)
    seen = []

    def drop(cond, mask):
        seen.append(int(mask.sum()))
        return torch.where(mask, torch.full_like(cond, 3), cond)

    cfg = TrainConfig(steps=60, batch_size=16, lr=3e-3, warmup=5, cond_drop=0.5)
    res = train_diffusion(_tiny(), NoiseSchedule.cosine(100), batches_from_tensors(images, labels, 16), cfg,
                          drop_condition=drop, show_progress=False)
    assert len(res.losses) == 60 and sum(res.losses[-10:]) < sum(res.losses[:10])
    assert 0 < sum(seen) < 60 * 16 and res.images_per_second > 0


class _Interrupt(Exception):
    """Stands in for Ctrl-C in the middle of a run."""


def _batches_until(images, stop_after: int | None):
    """next_batch for `images`, raising _Interrupt when asked for batch `stop_after` + 1."""
    inner, calls = batches_from_tensors(images, None, 4), [0]

    def next_batch(g):
        calls[0] += 1
        if stop_after is not None and calls[0] > stop_after:
            raise _Interrupt
        return inner(g)
    return next_batch


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path):
    images = torch.rand(16, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    cfg, schedule = TrainConfig(steps=8, batch_size=4, warmup=2, cond_drop=0.0), NoiseSchedule.cosine(50)
    torch.manual_seed(0)
    whole = train_diffusion(_tiny(), schedule, _batches_until(images, None), cfg, show_progress=False)
    state = RunState(tmp_path / "run.state.safetensors", every=3)
    torch.manual_seed(0)
    with pytest.raises(_Interrupt):  # stopped during step 6: the state saved after step 3 is what survives
        train_diffusion(_tiny(), schedule, _batches_until(images, 5), cfg, show_progress=False, state=state)
    torch.manual_seed(123)  # a different global RNG: resuming restores the one the run had
    resumed = train_diffusion(_tiny(), schedule, _batches_until(images, None), cfg, show_progress=False,
                              state=RunState(state.path, every=3, resume=True))
    assert resumed.losses == whole.losses and resumed.steps == 8
    for a, b in zip(resumed.ema.state_dict().values(), whole.ema.state_dict().values()):
        assert torch.equal(a, b)


def test_resuming_refuses_other_settings_and_a_missing_state(tmp_path):
    images = torch.rand(16, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    cfg, schedule = TrainConfig(steps=3, batch_size=4, warmup=2), NoiseSchedule.cosine(50)
    path = tmp_path / "run.state.safetensors"
    train_diffusion(_tiny(), schedule, _batches_until(images, None), cfg, show_progress=False,
                    state=RunState(path, every=3))
    with pytest.raises(ValueError, match="different settings: lr"):
        train_diffusion(_tiny(), schedule, _batches_until(images, None), TrainConfig(**{**cfg.to_dict(), "lr": 0.5}),
                        show_progress=False, state=RunState(path, every=3, resume=True))
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        RunState(tmp_path / "none.state.safetensors", every=3, resume=True)


def test_a_time_budget_picks_a_step_count_that_reproduces_the_run():
    images = torch.rand(16, 3, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1
    cfg = TrainConfig(steps=3, batch_size=4, warmup=20)  # the budget overrides steps=3
    budgeted = train_diffusion(_tiny(), NoiseSchedule.cosine(50), batches_from_tensors(images, None, 4), cfg,
                               show_progress=False, budget_seconds=0.5)
    assert budgeted.steps >= 21 and len(budgeted.losses) == budgeted.steps  # ran past the timing window (steps 4–20)
    fixed = TrainConfig(**{**cfg.to_dict(), "steps": budgeted.steps})
    again = train_diffusion(_tiny(), NoiseSchedule.cosine(50), batches_from_tensors(images, None, 4), fixed,
                            show_progress=False)
    assert again.losses == budgeted.losses  # the recorded step count is the whole recipe
    for a, b in zip(again.ema.state_dict().values(), budgeted.ema.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("warmup, budget, match", [(5, 1.0, "warm-up of at least 10"), (20, 0.0, "must be positive")])
def test_a_time_budget_refuses_what_it_cannot_reproduce(warmup, budget, match):
    images = torch.rand(8, 3, 16, 16) * 2 - 1
    with pytest.raises(ValueError, match=match):
        train_diffusion(_tiny(), NoiseSchedule.cosine(50), batches_from_tensors(images, None, 4),
                        TrainConfig(steps=30, batch_size=4, warmup=warmup), show_progress=False, budget_seconds=budget)


def test_run_options_change_only_what_they_name():
    from diffusion_course.recipes.options import RunOptions
    base = TrainConfig(steps=100, batch_size=64, lr=2e-3, sample_every=10)
    assert RunOptions().apply(base, seed=3) == TrainConfig(**{**base.to_dict(), "seed": 3})
    changed = RunOptions(steps=7, batch_size=256, sample_every=0).apply(base, seed=0)
    assert (changed.steps, changed.batch_size, changed.sample_every, changed.lr) == (7, 256, 0, 2e-3)
    assert RunOptions(minutes=1.5).budget_seconds == 90 and RunOptions().budget_seconds is None


def test_the_recorded_command_for_a_budgeted_run_names_its_steps():
    from diffusion_course.train import _with_steps
    cmd = "python -m diffusion_course.train text --from-scratch --minutes 5.5 --batch-size 256 --device cuda"
    assert _with_steps(cmd, 1234) == ("python -m diffusion_course.train text --from-scratch --batch-size 256 "
                                      "--device cuda --steps 1234")
    assert _with_steps("x --steps=9 --minutes=2", 5) == "x --steps 5"


def test_a_budgeted_vae_run_records_the_steps_that_reproduce_it(monkeypatch, tmp_path):
    from diffusion_course import recipes, train
    from diffusion_course.networks.vae import VAE, VAEConfig
    seen = {}

    def fake_vae_recipe(device, options):  # stands in for training: records what the command line asked for
        seen.update(minutes=options.minutes, batch_size=options.batch_size)
        vae = VAE(VAEConfig(block_out_channels=(8, 8), norm_num_groups=4, mid_attention=False, image_size=8))
        return {"vae": vae}, {"steps": 7}

    monkeypatch.setitem(recipes.RECIPES, "vae", fake_vae_recipe)
    train.main(["vae", "--minutes", "0.5", "--batch-size", "32", "--device", "cpu", "--out", str(tmp_path)])
    assert seen == {"minutes": 0.5, "batch_size": 32}
    meta = json.loads((tmp_path / "vae.json").read_text())["meta"]
    assert meta["reproduce"].endswith("vae --batch-size 32 --device cpu --out " + str(tmp_path) + " --steps 7")


def test_a_vae_with_other_latent_channels_is_saved_beside_the_shipped_one(monkeypatch, tmp_path):
    """--latent-channels 8 reaches the recipe, and its VAE is saved as vae8 (kind vae), never over the shipped vae."""
    from diffusion_course import recipes, train
    from diffusion_course.networks.vae import VAE, VAEConfig
    from diffusion_course.recipes.configs import VAE_CONFIG
    from diffusion_course.recipes.latent import vae_name
    from diffusion_course.training.checkpoints import load_checkpoint
    assert vae_name(VAE_CONFIG.latent_channels) == "vae" and vae_name(8) == "vae8"
    seen = {}

    def fake_vae_recipe(device, options):  # stands in for training: records the channels the command line asked for
        seen["latent_channels"] = options.latent_channels
        config = VAEConfig(block_out_channels=(8, 8), norm_num_groups=4, mid_attention=False, image_size=8,
                           latent_channels=options.latent_channels)
        return {vae_name(options.latent_channels): VAE(config)}, {"steps": 3}

    monkeypatch.setitem(recipes.RECIPES, "vae", fake_vae_recipe)
    train.main(["vae", "--latent-channels", "8", "--steps", "3", "--device", "cpu", "--out", str(tmp_path)])
    assert seen == {"latent_channels": 8}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "vae8.json", "vae8.safetensors"]
    vae, info = load_checkpoint("vae8", directory=tmp_path)
    assert info["kind"] == "vae" and vae.config.latent_channels == 8


@pytest.mark.parametrize("argv", [["latent", "--latent-channels", "8"], ["vae", "--latent-channels", "0"]])
def test_latent_channels_is_a_positive_count_for_the_vae_recipe_only(argv, capsys):
    from diffusion_course.train import main
    with pytest.raises(SystemExit):
        main(argv)
    assert "--latent-channels" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["uncond", "--from-scratch"], ["vae", "--sample-every", "5"], ["evaluator", "--batch-size", "8"],
                                  ["uncond", "--frozen-encoder"],
                                  ["vae", "--pretrain-encoder"], ["text", "--token-targets"]])
def test_the_command_line_rejects_options_a_recipe_does_not_take(argv, capsys):
    from diffusion_course.train import main
    with pytest.raises(SystemExit):
        main(argv)
    assert "recipe" in capsys.readouterr().err


@pytest.mark.parametrize("frozen", [False, True])
def test_the_text_recipe_can_keep_its_encoder_frozen(frozen):
    from diffusion_course.data.captions import caption_batches
    from diffusion_course.data.shapes import make_shapes
    from diffusion_course.recipes.configs import TEXT_PHRASE_DROP
    from diffusion_course.recipes.options import RunOptions
    from diffusion_course.recipes.pixel import text_model
    from diffusion_course.recipes.records import encoder_was_frozen
    from diffusion_course.runtime import seed_everything
    seed_everything(0)
    model, start = text_model(RunOptions(from_scratch=True, frozen_encoder=frozen))
    assert start["text_encoder"] == ("frozen at" if frozen else "trained jointly from") + " its random initialisation"
    assert encoder_was_frozen(start) == frozen and not encoder_was_frozen({})  # {}: a checkpoint older than the record
    seed_everything(0)
    again, _ = text_model(RunOptions(from_scratch=True))  # the same initial weights either way: only training differs
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = make_shapes(16, split="train", seed=0)
    batches = caption_batches(data.images, data.attrs, model.conditioner, 8, TEXT_PHRASE_DROP)
    result = train_diffusion(model, NoiseSchedule.cosine(100), batches, TrainConfig(steps=3, batch_size=8, warmup=1),
                             drop_condition=model.drop, show_progress=False)
    moved = {k: not torch.equal(before[k], v) for k, v in model.state_dict().items()}
    encoder = [m for k, m in moved.items() if k.startswith("conditioner.encoder.")]
    assert encoder and any(m for k, m in moved.items() if k.startswith("net."))
    assert not any(encoder) if frozen else all(encoder)
    ema = result.ema.conditioner.encoder.state_dict()
    assert all(torch.equal(ema[k], model.conditioner.encoder.state_dict()[k]) for k in ema) == frozen


def test_the_text_recipe_can_pretrain_its_encoder_on_caption_attributes(monkeypatch):
    from diffusion_course.data.shapes import make_shapes
    from diffusion_course.evaluation.text_probes import context_sensitivity
    from diffusion_course.recipes import pixel as recipes
    from diffusion_course.recipes.options import RunOptions
    from diffusion_course.runtime import seed_everything
    monkeypatch.setattr(recipes, "ENCODER_PRETRAIN_STEPS", 150)
    attrs = make_shapes(2000, split="train", seed=0).attrs
    with pytest.raises(ValueError, match="attrs"):
        recipes.text_model(RunOptions(pretrain_encoder=True, from_scratch=True))
    seed_everything(0)
    plain, _ = recipes.text_model(RunOptions(from_scratch=True))
    seed_everything(0)
    model, start = recipes.text_model(RunOptions(pretrain_encoder=True, frozen_encoder=True, from_scratch=True), attrs)
    assert start["text_encoder"] == "frozen at its caption pretraining (training.text_encoder.pretrain_text_encoder)"
    assert not any(p.requires_grad for p in model.conditioner.encoder.parameters())
    assert all(p.requires_grad for p in model.net.parameters())
    report = start["text_encoder_pretraining"]
    assert report["steps"] == 150 and min(report["accuracy"].values()) > 0.9  # every attribute read back
    # the U-Net's initial weights are the plain recipe's; the encoder now separates every part of the caption
    assert all(torch.equal(a, b) for a, b in zip(plain.net.state_dict().values(), model.net.state_dict().values()))
    before, after = context_sensitivity(plain.conditioner.eval()), context_sensitivity(model.conditioner.eval())
    assert all(after[k] > before[k] for k in ("shape", "colour", "size", "position", "background"))


def test_the_text_recipe_passes_token_targets_to_the_encoder_pretraining(monkeypatch):
    from diffusion_course.data.shapes import make_shapes
    from diffusion_course.recipes import pixel as recipes
    from diffusion_course.recipes.options import RunOptions
    from diffusion_course.training.text_encoder import text_conditioner
    monkeypatch.setattr(recipes, "ENCODER_PRETRAIN_STEPS", 5)
    attrs = make_shapes(200, split="train", seed=0).attrs
    _, start = recipes.text_model(RunOptions(from_scratch=True, pretrain_encoder=True, token_targets=True), attrs)
    assert start["text_encoder_pretraining"]["token_targets"] is True and "token" in start["text_encoder_pretraining"]["accuracy"]
    with pytest.raises(ValueError, match="token_targets"):
        text_conditioner(attrs, pretrain_steps=0, token_targets=True)


def test_a_conditional_unet_starts_from_uncond_only_where_its_backbone_matches():
    """`_start` loads the shipped `uncond` weights into a conditional U-Net of the same backbone (only the label embedding
    is new), and refuses, naming --from-scratch, one whose weights have other shapes (the patched `PATCHED_UNET`)."""
    from dataclasses import replace

    from diffusion_course.recipes.configs import CLASS_UNET
    from diffusion_course.recipes.options import RunOptions
    from diffusion_course.recipes.pixel import _start
    from diffusion_course.recipes.studies import PATCHED_UNET
    start = _start(RunOptions(), UNet(CLASS_UNET))
    assert start["init_from"] == "uncond" and start["new_parameters"] == ["label.weight"], start
    patched = UNet(replace(PATCHED_UNET, num_classes=8))
    with pytest.raises(ValueError, match="--from-scratch") as info:
        _start(RunOptions(), patched)
    assert "patch_size: expected 2, checkpoint has 1" in str(info.value)
    assert _start(RunOptions(from_scratch=True), patched) == {"init_from": None, "new_parameters": "all"}


def test_the_text_unet_can_start_from_the_class_model():
    """`--init-from class`: the text U-Net takes the class model's backbone, every weight of it, and leaves the label
    embedding behind (its condition arrives through cross-attention and the pooled caption); the layers text adds are
    the same new ones as when it starts from uncond."""
    from diffusion_course.recipes.configs import TEXT_UNET
    from diffusion_course.recipes.options import RunOptions
    from diffusion_course.recipes.pixel import _start
    from diffusion_course.training.checkpoints import load_checkpoint
    net = UNet(TEXT_UNET)
    start = _start(RunOptions(init_from="class"), net)
    assert start["init_from"] == "class" and start["left_behind"] == ["label.weight"], start
    assert start["new_parameters"] == _start(RunOptions(), UNet(TEXT_UNET))["new_parameters"]
    source = load_checkpoint("class")[0].state_dict()
    mine = net.state_dict()
    shared = [k for k in source if k != "label.weight"]
    assert shared and all(torch.equal(mine[k], source[k].to(mine[k].dtype)) for k in shared)
    uncond = load_checkpoint("uncond")[0].state_dict()
    assert not torch.equal(mine["stem.weight"], uncond["stem.weight"].to(mine["stem.weight"].dtype))


@pytest.mark.parametrize("argv", [["class", "--init-from", "class"], ["uncond", "--init-from", "class"]])
def test_only_the_text_recipe_takes_init_from(argv, capsys):
    from diffusion_course.train import main
    with pytest.raises(SystemExit):
        main(argv)
    assert "--init-from applies to the text recipe" in capsys.readouterr().err


def test_init_from_and_from_scratch_cannot_be_combined(capsys):
    from diffusion_course.train import main
    with pytest.raises(SystemExit):
        main(["text", "--init-from", "class", "--from-scratch"])
    assert "contradict" in capsys.readouterr().err


def test_the_text_recipe_starts_from_exactly_uncond():
    """The text U-Net is `uncond`'s plus layers that start at zero (cross-attention, the position embedding in attention,
    level 1's self-attention, the pooled caption's projection): before training, any caption gives uncond's prediction.
    And it fine-tunes without min-SNR weighting: with it, the one such run placed shapes at chance (notebook 07)."""
    from diffusion_course.recipes.configs import TEXT_TRAIN
    from diffusion_course.recipes.pixel import text_model
    from diffusion_course.training.checkpoints import load_checkpoint
    assert TEXT_TRAIN.weighting == "none"
    from diffusion_course.recipes.options import RunOptions
    from diffusion_course.runtime import seed_everything
    seed_everything(0)
    model, start = text_model(RunOptions())
    assert start["init_from"] == "uncond"
    new = set(start["new_parameters"])
    assert "pool.weight" in new and all(("attn" in k or k.startswith("pool.")) for k in new), sorted(new)[:5]
    uncond, _ = load_checkpoint("uncond")
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([10.0, 200.0, 500.0, 900.0])
    cond = model.conditioner.tokenize(["a large red star in the top left", "a blue moon", "", "a small green cross"], "cpu")
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x, t, cond), uncond(x, t))
