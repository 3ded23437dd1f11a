"""Fine-tuning a VAE's decoder under a frozen encoder: only the decoder moves, the latents stay, a decoder checkpoint
round-trips, and mismatched decoders are refused."""
import pytest
import torch

from diffusion_course.data.shapes import make_shapes
from diffusion_course.networks.vae import VAE, VAEConfig
from diffusion_course.networks.vae_decoder import (
    VAEDecoder,
    decoder_of,
    widen_decoder,
    with_decoder,
)
from diffusion_course.train import main as train_main
from diffusion_course.training.checkpoints import load_checkpoint, save_checkpoint
from diffusion_course.training.vae import finetune_decoder

TINY = VAEConfig(block_out_channels=(8, 16), norm_num_groups=4)


def _vae(seed=0, cfg=TINY):
    torch.manual_seed(seed)
    return VAE(cfg).eval()


def _images(n=64):
    return make_shapes(n, split="train", seed=0).images


def _finetune(vae, steps=12, seed=0):
    return finetune_decoder(vae, _images(), steps=steps, batch_size=16, lr=3e-3, warmup=4,
                            generator=torch.Generator().manual_seed(seed), show_progress=False)


def test_decoder_of_decodes_as_the_vae_does():
    vae = _vae()
    z = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(decoder_of(vae).decode(z), vae.decode(z))


def _reconstruction_error(vae, x):
    with torch.no_grad():
        return float((vae.decode(vae.encode(x).mean) - x).pow(2).mean())


def test_finetuning_moves_the_decoder_only_and_lowers_the_error():
    vae, x = _vae(), _images()
    before, error = {k: v.clone() for k, v in vae.state_dict().items()}, _reconstruction_error(vae, x)
    _finetune(vae, steps=40)
    after = vae.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(k.startswith(("decoder.", "post_quant_conv.")) for k in moved), sorted(moved)[:5]
    assert any(k.startswith("decoder.") for k in moved)
    assert _reconstruction_error(vae, x) < 0.8 * error, (error, _reconstruction_error(vae, x))
    assert all(p.requires_grad for p in vae.parameters()) and not vae.training  # left as a plain model


def test_finetuning_is_deterministic_under_a_seed():
    a, b, c = _vae(), _vae(), _vae()
    assert _finetune(a, seed=3) == _finetune(b, seed=3)
    assert _finetune(c, seed=4) != _finetune(_vae(), seed=3)


def test_with_decoder_keeps_the_encoder_and_swaps_the_decoder():
    vae, other = _vae(0), _vae(1)
    swapped = with_decoder(vae, decoder_of(other))
    x = _images(4)
    z = torch.randn(4, 4, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(swapped.encode(x).mean, vae.encode(x).mean)
        torch.testing.assert_close(swapped.decode(z), other.decode(z))
        assert not torch.allclose(swapped.decode(z), vae.decode(z))
    assert vae.decoder.conv_out.weight.data_ptr() != swapped.decoder.conv_out.weight.data_ptr()  # a copy, not vae


def test_with_decoder_refuses_a_decoder_for_another_latent_space():
    vae = _vae()
    other = VAEDecoder(VAEConfig(block_out_channels=(8, 16), norm_num_groups=4, scaling_factor=0.5))
    with pytest.raises(ValueError, match="scaling_factor"):
        with_decoder(vae, other)


def test_with_decoder_refuses_other_latent_channels_but_takes_another_width():
    vae = _vae()
    with pytest.raises(ValueError, match="latent_channels"):
        with_decoder(vae, VAEDecoder(VAEConfig(block_out_channels=(8, 16), norm_num_groups=4, latent_channels=3)))
    wide = VAEDecoder(VAEConfig(block_out_channels=(16, 32), norm_num_groups=8, layers_per_block=2))
    swapped = with_decoder(vae, wide)
    z = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(swapped.decode(z), wide.decode(z))
    assert swapped.config == vae.config  # the config still describes the encoder and its latents
    assert decoder_of(swapped).config == wide.config


def test_a_vae_with_a_wider_decoder_is_refused_by_the_diffusers_export():
    pytest.importorskip("diffusers")
    from diffusion_course.networks.diffusers_export import to_diffusers

    vae = _vae()
    to_diffusers(with_decoder(vae, decoder_of(_vae(1))))  # same widths: one AutoencoderKL holds it
    with pytest.raises(ValueError, match="single block_out_channels"):
        to_diffusers(with_decoder(vae, widen_decoder(decoder_of(vae), 2)))


def test_a_wider_decoder_exports_to_diffusers_decoder_under_autoencoderkl_key_names():
    pytest.importorskip("diffusers")
    from diffusers import AutoencoderKL

    from diffusion_course.networks.diffusers_export import (
        decoder_to_diffusers,
        diffusers_config,
    )

    vae = _vae()
    wide = widen_decoder(decoder_of(vae), 2, seed=3)
    _finetune(swapped := with_decoder(vae, wide), steps=6)  # move the new channels off their exact-copy start
    wide = decoder_of(swapped)
    hf = decoder_to_diffusers(wide)
    z = torch.randn(3, TINY.latent_channels, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = wide.decode(z), hf(z)
        assert not torch.allclose(ours, decoder_of(vae).decode(z), atol=1e-3)  # a decoder of its own, not the narrow one
        torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-5)
        # the same names as the decoding half of an AutoencoderKL of the decoder's widths: its weights load into one
        ae = AutoencoderKL(**diffusers_config(wide.config))
        half = {k: v for k, v in ae.state_dict().items() if k.startswith(("decoder.", "post_quant_conv."))}
        assert sorted(half) == sorted(hf.state_dict())
        ae.load_state_dict(hf.state_dict(), strict=False)
        torch.testing.assert_close(ae.decode(z).sample, ours, rtol=0, atol=1e-5)


def _decoded(decoder, seed=7):
    z = torch.randn(3, 4, 16, 16, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return decoder.decode(z)


@pytest.mark.parametrize("factor", [2, 3])
def test_widen_decoder_starts_as_an_exact_copy(factor):
    trained = _vae(2)
    _finetune(trained, steps=6)  # trained weights, not only an initialisation's
    narrow = decoder_of(trained)
    wide = widen_decoder(narrow, factor, seed=1)
    assert wide.config.block_out_channels == tuple(factor * c for c in TINY.block_out_channels)
    assert wide.config.norm_num_groups == factor * TINY.norm_num_groups
    assert wide.config.scaling_factor == TINY.scaling_factor and wide.config.latent_channels == TINY.latent_channels
    n_narrow, n_wide = (sum(p.numel() for p in d.parameters()) for d in (narrow, wide))
    assert n_wide > (factor ** 2 - 1) * n_narrow, (n_narrow, n_wide)
    torch.testing.assert_close(_decoded(wide), _decoded(narrow), atol=1e-5, rtol=1e-5)
    assert all(p.data_ptr() != q.data_ptr() for p in wide.parameters() for q in narrow.parameters())


def test_widen_decoder_is_seeded_and_leaves_the_global_generator_alone():
    narrow = decoder_of(_vae())
    torch.manual_seed(0)
    before = torch.get_rng_state()
    a, b, c = (widen_decoder(narrow, 2, seed=s) for s in (1, 1, 2))
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert not all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), c.state_dict().values()))
    torch.testing.assert_close(_decoded(a), _decoded(c), atol=1e-5, rtol=1e-5)  # the seed changes no output


def test_a_widened_decoder_uses_its_new_channels_when_fine_tuned():
    """The new channels start unconnected to the old ones, yet training must reach them: after a few steps the widened
    decoder's old-to-new weights have moved and the output no longer equals the narrow decoder's."""
    vae = _vae()
    narrow = decoder_of(vae)
    wide_vae = with_decoder(vae, widen_decoder(narrow, 2, seed=0))
    conv_out_new = wide_vae.decoder.conv_out.weight[:, TINY.block_out_channels[0]:].detach().clone()
    assert not conv_out_new.any()  # the image reads no new channel at the start
    _finetune(wide_vae, steps=6)
    assert wide_vae.decoder.conv_out.weight[:, TINY.block_out_channels[0]:].abs().sum() > 0
    assert not torch.allclose(_decoded(decoder_of(wide_vae)), _decoded(narrow), atol=1e-3)


def test_widen_decoder_refuses_a_bad_factor():
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="factor must be a positive int"):
            widen_decoder(decoder_of(_vae()), bad)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="steps, batch_size and lr must be positive"):
        finetune_decoder(_vae(), _images(8), steps=0)
    with pytest.raises(ValueError, match="warmup must be in"):
        finetune_decoder(_vae(), _images(8), steps=10, warmup=10)


def test_learning_rate_warms_up_then_decays_to_five_percent():
    from diffusion_course.training.loop import warmup_cosine
    from diffusion_course.training.vae import FINAL_LR_FRAC

    factors = [warmup_cosine(i, 100, 10, FINAL_LR_FRAC) for i in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[9:], factors[10:])) and factors[-1] > 0.05
    assert warmup_cosine(100, 100, 10, FINAL_LR_FRAC) == pytest.approx(0.05)


def test_decoder_checkpoint_round_trip(tmp_path):
    dec = decoder_of(_vae())
    save_checkpoint("dec", dec, "vae_decoder", TINY.to_dict(), directory=tmp_path, dtype=torch.float16)
    loaded, info = load_checkpoint("dec", directory=tmp_path, expect=TINY)
    assert isinstance(loaded, VAEDecoder) and info["kind"] == "vae_decoder"
    z = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(loaded.decode(z), dec.decode(z), atol=2e-2, rtol=2e-2)  # float16 storage
    assert set(loaded.state_dict()) < set(VAE(TINY).state_dict())  # the decoding half of a VAE's weights


def test_the_recipe_takes_no_time_budget(capsys):
    with pytest.raises(SystemExit):
        train_main(["vae_decoder", "--minutes", "1"])
    assert "no time budget" in capsys.readouterr().err


def test_a_decoder_record_is_current_only_for_the_latent_unet_it_measured():
    """The decoder recipe's record of the latent model's samples names that U-Net's weights; after the U-Net is retrained
    (another sha256), or for records that name none, the record is no longer the shipped model's."""
    from diffusion_course.recipes.records import decoder_record_is_current
    from diffusion_course.training.checkpoints import read_manifest

    shipped = read_manifest().get("latent_unet", {}).get("sha256")
    if shipped is None:
        pytest.skip("no latent U-Net shipped")
    assert decoder_record_is_current({"latent_model_sha256": shipped})
    assert not decoder_record_is_current({"latent_model_sha256": "0" * 64})
    assert not decoder_record_is_current({})


def test_continue_from_is_the_wide_decoder_recipe_s_and_takes_a_widened_decoder_only(tmp_path, capsys):
    """`--continue-from` (the wide decoder's second cycle) belongs to vae_decoder_wide alone, and refuses a decoder of the
    VAE's own width: the second cycle fine-tunes a widened one."""
    from diffusion_course.recipes.latent import train_vae_decoder_wide
    from diffusion_course.recipes.options import RunOptions
    with pytest.raises(SystemExit):
        train_main(["vae_decoder", "--continue-from", "runs/wide/vae_decoder_wide"])
    assert "--continue-from applies to the vae_decoder_wide recipe" in capsys.readouterr().err
    vae, _ = load_checkpoint("vae")
    narrow = decoder_of(vae)
    save_checkpoint("narrow", narrow, "vae_decoder", narrow.config.to_dict(), directory=tmp_path)
    with pytest.raises(ValueError, match="is not a widened VAE decoder"):
        train_vae_decoder_wide("cpu", RunOptions(continue_from=str(tmp_path / "narrow")))
