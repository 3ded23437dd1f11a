"""The latent adapter: scaling, the data-derived scale factor, round trips, and sampling in latent space."""
import pytest
import torch

from diffusion_course.analytic import point_set_denoiser
from diffusion_course.latent import (LatentAdapter, compute_scaling_factor, encode_latents, sample_latent,
                                     with_scaling_factor)
from diffusion_course.shapes import make_shapes
from diffusion_course.vae import VAE, VAEConfig

TINY = dict(block_out_channels=(16, 32, 32), norm_num_groups=8)  # factor 4: 32×32 → 8×8×4


@pytest.fixture(scope="module")
def vae():
    torch.manual_seed(0)  # only for the initial weights
    return VAE(VAEConfig(**TINY)).eval()


@pytest.fixture(scope="module")
def images():
    return make_shapes(16, seed=0).images


def test_scale_and_unscale_are_inverse(vae):
    vae.config = with_scaling_factor(vae.config, 0.3)
    try:
        adapter = LatentAdapter(vae)
        z = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(adapter.scale(z), z * 0.3)
        torch.testing.assert_close(adapter.unscale(adapter.scale(z)), z, rtol=1e-6, atol=0)
    finally:
        vae.config = with_scaling_factor(vae.config, 1.0)


def test_to_latent_uses_the_posterior_mean_unless_given_a_generator(vae, images):
    adapter = LatentAdapter(vae, batch_size=5)  # several chunks
    with torch.no_grad():
        mean = vae.encode(images).mean
    torch.testing.assert_close(adapter.to_latent(images), adapter.scale(mean))
    a = adapter.to_latent(images, torch.Generator().manual_seed(1))
    b = adapter.to_latent(images, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.allclose(a, adapter.to_latent(images))


def test_round_trip_has_the_image_shape_and_range(vae, images):
    adapter = LatentAdapter(vae)
    latents = adapter.to_latent(images)
    assert latents.shape == (16, *adapter.latent_shape()) == (16, 4, 8, 8)
    out = adapter.to_image(latents)
    assert out.shape == images.shape and out.min() >= -1 and out.max() <= 1


def test_latent_shape_for_each_factor():
    for channels, side in (((16, 32), 16), ((16, 32, 32), 8), ((16, 32, 32, 32), 4)):
        adapter = LatentAdapter(VAE(VAEConfig(block_out_channels=channels, norm_num_groups=8)))
        assert adapter.latent_shape(32) == (4, side, side)
        assert adapter.latent_shape(64) == (4, 2 * side, 2 * side)
    with pytest.raises(ValueError, match="image_size must be a positive multiple of the downsampling factor 8"):
        adapter.latent_shape(36)


def test_scaling_factor_makes_the_latents_unit_variance(vae, images):
    factor = compute_scaling_factor(vae, images, batch_size=5)
    z = encode_latents(vae, images)
    assert abs(factor - 1 / z.std(correction=0).item()) < 1e-4 * factor
    assert abs(factor - compute_scaling_factor(vae, images, batch_size=256)) < 1e-5 * factor  # chunking is neutral
    old = vae.config
    vae.config = with_scaling_factor(old, factor)
    try:
        assert old.scaling_factor == 1.0, "with_scaling_factor must return a copy"
        latents = LatentAdapter(vae).to_latent(images)  # reads the calibrated config
        assert abs(latents.std(correction=0).item() - 1.0) < 1e-4
    finally:
        vae.config = old
    with pytest.raises(ValueError, match="scaling_factor"):
        with_scaling_factor(old, -1.0)


def test_sample_latent_runs_an_unchanged_sampler_in_latent_space_then_decodes(vae, images):
    adapter = LatentAdapter(vae)
    points = adapter.to_latent(images[:3]).double()
    denoiser = point_set_denoiser(points)  # the exact denoiser of three latents; raises on any other shape
    sigmas = torch.tensor([80.0, 30.0, 10.0, 4.0, 1.5, 0.6, 0.2, 0.05, 0.0])
    noise = adapter.noise(4, 80.0, generator=torch.Generator().manual_seed(0)).double()
    assert noise.shape == (4, 4, 8, 8)
    vae.double()
    try:
        out = sample_latent("euler", denoiser, noise, sigmas, adapter)
        decoded_points = adapter.to_image(points)
    finally:
        vae.float()
    assert out.shape == (4, 3, 32, 32)
    for img in out:  # every sample decodes to the image of one of the three latents
        assert min((img - p).abs().max().item() for p in decoded_points) < 1e-6


def test_noise_is_seeded():
    adapter = LatentAdapter(VAE(VAEConfig(**TINY)))
    a = adapter.noise(2, 10.0, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, adapter.noise(2, 10.0, generator=torch.Generator().manual_seed(4)))
    assert a.shape == (2, 4, 8, 8)


def test_bad_input_gives_clear_errors(vae, images):
    with pytest.raises(ValueError, match="batch_size"):
        LatentAdapter(vae, batch_size=0)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 3"):
        LatentAdapter(vae).to_latent(images[:, :1])
    with pytest.raises(ValueError, match=r"z must have shape \(batch, 4"):
        LatentAdapter(vae).to_image(torch.zeros(1, 3, 8, 8))


@pytest.mark.parametrize("channels", [4, 8])
def test_the_latent_unet_takes_the_channels_of_the_vae_it_is_trained_on(channels):
    """`--vae vae8` trains the latent recipe's U-Net on 8-channel latents: only its input and output channels change."""
    from dataclasses import replace

    from diffusion_course.recipes_latent import LATENT_UNET, VAE_CONFIG, latent_unet_config
    config = latent_unet_config(replace(VAE_CONFIG, latent_channels=channels))
    assert (config.in_channels, config.out_channels) == (channels, channels)
    assert replace(config, in_channels=4, out_channels=4) == LATENT_UNET


def test_the_latent_recipe_refuses_a_checkpoint_that_is_not_a_vae():
    from diffusion_course.recipes_latent import _training_latents
    with pytest.raises(ValueError, match="not a VAE"):
        _training_latents(torch.device("cpu"), "latent_unet")


def test_only_the_latent_recipe_takes_vae(capsys):
    from diffusion_course.recipes import main
    with pytest.raises(SystemExit):
        main(["vae_decoder", "--vae", "vae8"])
    assert "--vae applies to the latent recipe" in capsys.readouterr().err
