"""The latent adapter: scaling, the data-derived scale factor, round trips, and sampling in latent space."""
import copy

import pytest
import torch

from diffusion_course.core.analytic import point_set_denoiser
from diffusion_course.core.samplers import sample
from diffusion_course.data.shapes import make_shapes
from diffusion_course.networks.latent import (
    LatentAdapter,
    compute_scaling_factor,
    encode_latents,
    with_scaling_factor,
)
from diffusion_course.networks.vae import VAE, VAEConfig

TINY = {"block_out_channels": (16, 32, 32), "norm_num_groups": 8}  # factor 4: 32×32 → 8×8×4


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


def test_an_unchanged_sampler_runs_in_latent_space_and_the_adapter_decodes(vae, images):
    adapter = LatentAdapter(vae)
    points = adapter.to_latent(images[:3]).double()
    denoiser = point_set_denoiser(points)  # the exact denoiser of three latents; raises on any other shape
    sigmas = torch.tensor([80.0, 30.0, 10.0, 4.0, 1.5, 0.6, 0.2, 0.05, 0.0])
    noise = adapter.noise(4, 80.0, generator=torch.Generator().manual_seed(0)).double()
    assert noise.shape == (4, 4, 8, 8)
    vae.double()
    try:
        out = adapter.to_image(sample("euler", denoiser, noise, sigmas))
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

    from diffusion_course.recipes.configs import LATENT_UNET, VAE_CONFIG
    from diffusion_course.recipes.latent import latent_unet_config
    config = latent_unet_config(replace(VAE_CONFIG, latent_channels=channels))
    assert (config.in_channels, config.out_channels) == (channels, channels)
    assert replace(config, in_channels=4, out_channels=4) == LATENT_UNET


def test_the_latent_recipe_refuses_a_checkpoint_that_is_not_a_vae():
    from diffusion_course.recipes.latent import _training_latents
    with pytest.raises(ValueError, match="not a VAE"):
        _training_latents(torch.device("cpu"), "latent_unet")


def test_only_the_latent_recipe_takes_vae(capsys):
    from diffusion_course.train import main
    with pytest.raises(SystemExit):
        main(["vae_decoder", "--vae", "vae8"])
    assert "--vae applies to the latent recipe" in capsys.readouterr().err


def test_a_checkpoint_on_the_command_line_is_a_shipped_name_or_a_path():
    from pathlib import Path

    from diffusion_course.training.checkpoints import WEIGHTS_DIR, checkpoint_location
    assert checkpoint_location("vae8") == ("vae8", WEIGHTS_DIR)
    for ref in ("runs/vae8/vae8", "runs/vae8/vae8.safetensors", "runs/vae8/vae8.json", Path("runs/vae8/vae8")):
        assert checkpoint_location(ref) == ("vae8", Path("runs/vae8"))
    with pytest.raises(ValueError, match="does not name a checkpoint"):
        checkpoint_location("")


def test_the_latent_recipe_trains_on_a_vae_from_another_folder(tmp_path, monkeypatch):
    """`--vae runs/vae8/vae8`: a VAE a vae run wrote with --out is loaded from there (hash-checked against that folder's
    manifest), and its latents, scaled by its own factor, are what the latent U-Net trains on."""
    from diffusion_course.recipes import latent as recipes_latent
    from diffusion_course.training.checkpoints import read_manifest, save_checkpoint
    torch.manual_seed(0)
    config = VAEConfig(block_out_channels=(8, 8), norm_num_groups=4, mid_attention=False, latent_channels=8,
                       scaling_factor=0.5)
    vae = VAE(config).eval()
    save_checkpoint("vae8", vae, "vae", config.to_dict(), directory=tmp_path / "vae8")
    monkeypatch.setattr(recipes_latent, "TRAIN_IMAGES", 6)
    loaded, data, latents, _ = recipes_latent._training_latents(torch.device("cpu"), str(tmp_path / "vae8" / "vae8"))
    assert loaded.config == config and latents.shape == (6, 8, 16, 16)
    assert torch.allclose(latents, encode_latents(vae, data.images) * 0.5, atol=1e-6)
    assert recipes_latent._sha256_of(str(tmp_path / "vae8" / "vae8.safetensors")) == \
        read_manifest(tmp_path / "vae8")["vae8"]["sha256"]
    with pytest.raises(Exception, match="no checkpoint named 'vae9'"):
        recipes_latent._training_latents(torch.device("cpu"), str(tmp_path / "vae8" / "vae9"))


def test_latent_qualities_samples_each_caption_set_once_and_decodes_it_with_every_decoder(vae, monkeypatch):
    """The refiner recipe judges its pair under two decoders: the latents are sampled once per caption set, and each
    decoder draws those same latents."""
    from diffusion_course.networks.vae_decoder import (
        decoder_of,
        widen_decoder,
        with_decoder,
    )
    from diffusion_course.recipes import latent as recipes_latent
    sampled, judged = [], []

    def fake_sample(model, schedule, adapter, prompts, device, decode=True):
        assert not decode
        sampled.append(tuple(prompts))
        return torch.randn(len(prompts), 4, 8, 8, generator=torch.Generator().manual_seed(len(sampled)))

    def fake_caption_quality(sample_fn, evaluator):  # two caption sets, as caption_quality has
        judged.append([sample_fn(["a red circle", "a blue star"]), sample_fn(["a green square"])])
        return len(judged)

    monkeypatch.setattr(recipes_latent, "sample_latent_model", fake_sample)
    monkeypatch.setattr(recipes_latent, "caption_quality", fake_caption_quality)
    monkeypatch.setattr(recipes_latent, "caption_quality_record", lambda reports, w: reports)
    monkeypatch.setattr(recipes_latent, "load_checkpoint", lambda *a, **k: (None, {}))  # the evaluator is faked away
    torch.manual_seed(0)
    other = with_decoder(copy.deepcopy(vae), widen_decoder(decoder_of(vae), 2))
    for p in other.decoder.parameters():
        torch.nn.init.normal_(p, std=0.05)
    adapters = [LatentAdapter(vae), LatentAdapter(other)]
    with torch.no_grad():
        assert recipes_latent.latent_qualities(None, None, adapters, "cpu") == [1, 2]
    assert sampled == [("a red circle", "a blue star"), ("a green square",)]  # once each, not once per decoder
    first, second = judged
    z1 = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(first[0], adapters[0].to_image(z1))
        torch.testing.assert_close(second[0], adapters[1].to_image(z1))
    assert not torch.allclose(first[0], second[0])  # a different decoder drew them
    with pytest.raises(ValueError, match="at least one adapter"):
        recipes_latent.latent_qualities(None, None, [], "cpu")
    vae8 = VAE(VAEConfig(**TINY, latent_channels=8)).eval()
    with pytest.raises(ValueError, match="share their latents"):
        recipes_latent.latent_qualities(None, None, [LatentAdapter(vae), LatentAdapter(vae8)], "cpu")
