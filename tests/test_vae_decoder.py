"""Fine-tuning a VAE's decoder under a frozen encoder: only the decoder moves, the latents stay, a decoder checkpoint
round-trips, and mismatched decoders are refused."""
import pytest
import torch

from diffusion_course.checkpoints import load_checkpoint, save_checkpoint
from diffusion_course.recipes import main as train_main
from diffusion_course.shapes import make_shapes
from diffusion_course.vae import VAE, VAEConfig
from diffusion_course.vae_decoder import VAEDecoder, decoder_of, finetune_decoder, with_decoder

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


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="steps, batch_size and lr must be positive"):
        finetune_decoder(_vae(), _images(8), steps=0)
    with pytest.raises(ValueError, match="warmup must be in"):
        finetune_decoder(_vae(), _images(8), steps=10, warmup=10)


def test_learning_rate_warms_up_then_decays_to_five_percent():
    from diffusion_course.train import warmup_cosine
    from diffusion_course.vae_decoder import FINAL_LR_FRAC

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
    from diffusion_course.checkpoints import read_manifest
    from diffusion_course.recipes_latent import decoder_record_is_current

    shipped = read_manifest().get("latent_unet", {}).get("sha256")
    if shipped is None:
        pytest.skip("no latent U-Net shipped")
    assert decoder_record_is_current({"latent_model_sha256": shipped})
    assert not decoder_record_is_current({"latent_model_sha256": "0" * 64})
    assert not decoder_record_is_current({})
