"""The VAE: shapes for factors 2/4/8, the KL against its closed form, seeded sampling, training,
clear errors, checkpoints, and parity with diffusers.AutoencoderKL after export."""
import json
import math

import pytest
import torch

from diffusion_course.data.shapes import make_shapes
from diffusion_course.networks.vae import VAE, DiagonalGaussian, VAEConfig
from diffusion_course.training.checkpoints import load_checkpoint, save_checkpoint
from diffusion_course.training.vae import train_vae, vae_loss

TINY = dict(block_out_channels=(16, 32), norm_num_groups=8)


def _x(b=2, c=3, h=32, w=32, seed=0):
    return torch.randn(b, c, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("channels, factor", [((16, 32), 2), ((16, 32, 32), 4), ((16, 32, 32, 32), 8)])
def test_shapes_for_downsampling_factors_2_4_8(channels, factor):
    cfg = VAEConfig(block_out_channels=channels, norm_num_groups=8)
    vae = VAE(cfg)
    assert cfg.downsampling_factor == factor and cfg.latent_size(32) == 32 // factor
    x = _x(h=32, w=16)  # non-square works too
    posterior = vae.encode(x)
    for t in (posterior.mean, posterior.logvar, posterior.std, posterior.mode()):
        assert t.shape == (2, 4, 32 // factor, 16 // factor)
    recon, post = vae(x, generator=torch.Generator().manual_seed(0))
    assert recon.shape == x.shape and post.mean.shape == posterior.mean.shape


def test_default_config_is_32px_to_8x8x4():
    cfg = VAEConfig()
    assert cfg.downsampling_factor == 4 and cfg.latent_size(cfg.image_size) == 8 and cfg.latent_channels == 4
    assert cfg.scaling_factor == 1.0  # "not yet computed"; latent.compute_scaling_factor fills it in


def test_kl_is_zero_for_the_standard_normal_and_matches_the_closed_form():
    zero = torch.zeros(3, 4, 2, 2)
    torch.testing.assert_close(DiagonalGaussian(zero, zero).kl(), torch.zeros(3))
    g = torch.Generator().manual_seed(1)
    mean, logvar = torch.randn(3, 4, 2, 2, generator=g), torch.randn(3, 4, 2, 2, generator=g)
    q, p = torch.distributions.Normal(mean, (0.5 * logvar).exp()), torch.distributions.Normal(0.0, 1.0)
    expected = torch.distributions.kl_divergence(q, p).flatten(1).sum(1)  # an independent reference
    torch.testing.assert_close(DiagonalGaussian(mean, logvar).kl(), expected)
    by_hand = 0.5 * (mean**2 + logvar.exp() - 1 - logvar).flatten(1).sum(1)
    torch.testing.assert_close(DiagonalGaussian(mean, logvar).kl(), by_hand)


def test_posterior_sampling_is_seeded_and_has_the_right_moments():
    mean, logvar = torch.full((1, 4, 64, 64), 2.0), torch.full((1, 4, 64, 64), math.log(0.25))
    q = DiagonalGaussian(mean, logvar)
    a, b = q.sample(torch.Generator().manual_seed(5)), q.sample(torch.Generator().manual_seed(5))
    assert torch.equal(a, b), "the same generator state must give the same sample"
    assert not torch.equal(a, q.sample(torch.Generator().manual_seed(6)))
    assert abs(a.mean().item() - 2.0) < 0.02 and abs(a.std().item() - 0.5) < 0.02
    assert torch.equal(q.mode(), mean)  # no generator needed
    assert DiagonalGaussian(mean, torch.full_like(mean, -100.0)).logvar.min().item() == -30.0  # clamped


def test_encode_is_deterministic_and_decode_of_the_mode_round_trips_the_shape():
    vae = VAE(VAEConfig(**TINY)).eval()
    x = _x()
    torch.testing.assert_close(vae.encode(x).mean, vae.encode(x).mean, rtol=0, atol=0)
    assert vae.decode(vae.encode(x).mode()).shape == x.shape
    r1, _ = vae(x, generator=torch.Generator().manual_seed(3))
    r2, _ = vae(x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(r1, r2)


def test_vae_loss_parts():
    x = _x()
    mean, logvar = torch.randn(2, 4, 8, 8), torch.zeros(2, 4, 8, 8)
    q = DiagonalGaussian(mean, logvar)
    loss = vae_loss(x, x + 0.1, q, kl_weight=0.5)
    torch.testing.assert_close(loss.reconstruction, torch.tensor(0.01))
    torch.testing.assert_close(loss.kl, q.kl().mean())
    torch.testing.assert_close(loss.total, loss.reconstruction + 0.5 * loss.kl / x[0].numel())
    assert vae_loss(x, x, q, kl_weight=0.0).total.item() == 0.0


def test_a_few_training_steps_lower_the_loss():
    torch.manual_seed(0)  # only for the initial weights
    vae = VAE(VAEConfig(block_out_channels=(16, 16), norm_num_groups=8, mid_attention=False, image_size=16))
    images = make_shapes(8, seed=0).images[:, :, ::2, ::2]  # 16×16 keeps the test fast

    def reconstruction_error():  # deterministic (posterior mean), unlike the per-step losses
        with torch.no_grad():
            return (vae.decode(vae.encode(images).mode()) - images).pow(2).mean().item()

    before = reconstruction_error()
    history = train_vae(vae, images, steps=20, batch_size=8, lr=3e-3, generator=torch.Generator().manual_seed(0),
                        show_progress=False)
    assert set(history) == {"total", "reconstruction", "kl"} and len(history["total"]) == 20
    assert reconstruction_error() < 0.6 * before
    assert sum(history["total"][-3:]) < sum(history["total"][:3])
    assert not vae.training


def test_the_loss_history_is_read_back_in_groups_without_losing_or_reordering_steps(monkeypatch):
    import diffusion_course.training.vae as vae_module
    real_loss, calls = vae_module.vae_loss, []

    def numbered_loss(x, recon, posterior, kl_weight):  # the real loss to minimise; the step number as "reconstruction"
        loss = real_loss(x, recon, posterior, kl_weight)
        calls.append(len(calls))
        return vae_module.VAELoss(loss.total, torch.tensor(float(calls[-1])), loss.kl)

    monkeypatch.setattr(vae_module, "vae_loss", numbered_loss)
    vae = VAE(VAEConfig(block_out_channels=(8, 8), norm_num_groups=4, mid_attention=False, image_size=8))
    images = make_shapes(4, seed=0).images[:, :, ::4, ::4]
    history = train_vae(vae, images, steps=55, batch_size=2, generator=torch.Generator().manual_seed(0),
                        show_progress=False)  # 55 = one full group of 50, then a partial one
    assert history["reconstruction"] == [float(i) for i in range(55)]
    assert all(len(v) == 55 for v in history.values())


def test_a_vae_time_budget_is_timed_on_a_copy_and_gives_a_step_count():
    import time

    from diffusion_course.recipes.latent import vae_steps_for_budget
    vae = VAE(VAEConfig(block_out_channels=(8, 8), norm_num_groups=4, mid_attention=False, image_size=8))
    images = make_shapes(4, seed=0).images[:, :, ::4, ::4]
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    steps, per_step = vae_steps_for_budget(vae, images, 2, budget_seconds=2.0, warm=1, timed=5)
    assert steps == max(1, int(2.0 / per_step))  # the budget over the timed seconds per step, at least one step
    t0 = time.perf_counter()
    train_vae(VAE(vae.config), images, steps=5, batch_size=2, show_progress=False)
    direct = (time.perf_counter() - t0) / 5
    assert direct / 10 < per_step < direct * 10, (per_step, direct)  # the same order as a step timed directly
    assert all(torch.equal(before[k], v) for k, v in vae.state_dict().items())  # the run itself starts untouched
    with pytest.raises(ValueError, match="budget_seconds"):
        vae_steps_for_budget(vae, images, 2, budget_seconds=0)


def test_bad_input_gives_clear_errors():
    vae = VAE(VAEConfig(**TINY))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 3"):
        vae.encode(_x(c=1))
    with pytest.raises(ValueError, match="multiples of the downsampling factor 2"):
        vae.encode(_x(h=31, w=32))
    with pytest.raises(ValueError, match=r"z must have shape \(batch, 4"):
        vae.decode(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="recon"):
        vae_loss(_x(), _x(h=16, w=16), DiagonalGaussian(torch.zeros(2, 4, 1, 1), torch.zeros(2, 4, 1, 1)))
    with pytest.raises(ValueError, match="steps"):
        train_vae(vae, _x(), steps=0, show_progress=False)


@pytest.mark.parametrize("kwargs, word", [
    (dict(block_out_channels=(30, 64)), "norm_num_groups"),
    (dict(block_out_channels=()), "block_out_channels"),
    (dict(latent_channels=0), "latent_channels"),
    (dict(scaling_factor=0.0), "scaling_factor"),
    (dict(image_size=30), "image_size"),
])
def test_bad_config_gives_clear_errors(kwargs, word):
    with pytest.raises(ValueError, match=word):
        VAEConfig(**kwargs)


def test_config_and_weights_round_trip_through_a_checkpoint(tmp_path):
    cfg = VAEConfig(**TINY, scaling_factor=0.5)
    assert VAEConfig(**json.loads(json.dumps(cfg.to_dict()))) == cfg
    vae = VAE(cfg)
    save_checkpoint("vae_test", vae, "vae", cfg.to_dict(), directory=tmp_path)
    loaded, info = load_checkpoint("vae_test", expect=cfg, directory=tmp_path)
    assert loaded.config == cfg
    x = _x()
    torch.testing.assert_close(loaded.encode(x).mean, vae.encode(x).mean, rtol=0, atol=0)


@pytest.mark.parametrize("cfg", [
    VAEConfig(),
    VAEConfig(block_out_channels=(16, 32), layers_per_block=2, mid_attention=False, latent_channels=3),
])
def test_diffusers_export_computes_the_same_function(cfg):
    pytest.importorskip("diffusers")
    from diffusion_course.networks.diffusers_export import from_diffusers, to_diffusers

    torch.manual_seed(0)
    vae = VAE(cfg).eval()
    ref = to_diffusers(vae)
    assert sum(p.numel() for p in ref.parameters()) == sum(p.numel() for p in vae.parameters())
    x = _x(3)
    with torch.no_grad():
        ours, theirs = vae.encode(x), ref.encode(x).latent_dist
        torch.testing.assert_close(ours.mean, theirs.mean, rtol=0, atol=1e-5)
        torch.testing.assert_close(ours.logvar, theirs.logvar, rtol=0, atol=1e-5)
        torch.testing.assert_close(vae.decode(ours.mean), ref.decode(ours.mean).sample, rtol=0, atol=1e-5)
        a = vae(x, generator=torch.Generator().manual_seed(2))[0]
        b = ref(x, sample_posterior=True, generator=torch.Generator().manual_seed(2)).sample
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    back = from_diffusers(ref)
    assert back.config == vae.config
    for (k1, v1), (k2, v2) in zip(back.state_dict().items(), vae.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)


def test_import_from_diffusers_refuses_unsupported_options():
    from diffusion_course.networks.diffusers_export import (
        diffusers_config,
        vae_config_from_diffusers,
    )

    config = diffusers_config(VAEConfig())
    assert vae_config_from_diffusers(config) == VAEConfig()
    with pytest.raises(ValueError, match="act_fn"):
        vae_config_from_diffusers({**config, "act_fn": "relu"})
