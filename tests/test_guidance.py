"""Classifier-free guidance: the wrapper reduces to the plain models at w=0 and w=1, combines in between,
steers away from negative conditions, batches any condition type, and works with every sampler."""
import pytest
import torch

import diffusion_course as dc
from diffusion_course.core.generation import generate
from diffusion_course.core.guidance import ClassifierFreeGuidance, cat_cond, label_null

MEANS = torch.tensor([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.0]], dtype=torch.float64)


def cond_denoiser(x, sigma, cond):
    """Exact denoisers: label k → the Gaussian N(μ_k, 0.3²); label 3 (null) → the mixture of all three."""
    mixture = dc.GaussianMixtureDenoiser(MEANS, 0.3)
    out = mixture(x, sigma)
    for k in range(3):
        sel = cond == k
        if sel.any():
            s = torch.as_tensor(sigma, dtype=torch.float64)
            s = s[sel] if s.ndim == 1 else s
            out[sel] = dc.GaussianMixtureDenoiser(MEANS[k:k + 1], 0.3)(x[sel], s)
    return out


def _guided(scale, negative=None):
    return ClassifierFreeGuidance(cond_denoiser, scale, label_null(3), negative=negative)


def test_scale_zero_and_one_reduce_to_the_plain_models():
    x = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 3
    c = torch.tensor([0, 1, 2, 0, 1, 2])
    torch.testing.assert_close(_guided(0.0)(x, 2.0, c), cond_denoiser(x, 2.0, torch.full((6,), 3)))
    torch.testing.assert_close(_guided(1.0)(x, 2.0, c), cond_denoiser(x, 2.0, c))


def test_guidance_is_the_linear_combination():
    x = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 3
    c, sigma = torch.tensor([0, 1, 2, 0, 1, 2]), torch.linspace(0.5, 3.0, 6, dtype=torch.float64)
    u = cond_denoiser(x, sigma, torch.full((6,), 3))
    k = cond_denoiser(x, sigma, c)
    torch.testing.assert_close(_guided(4.0)(x, sigma, c), u + 4.0 * (k - u))


def test_negative_condition_replaces_the_null_one():
    x = torch.zeros(4, 2, dtype=torch.float64)
    c, neg = torch.full((4,), 2), torch.full((4,), 0)
    n, k = cond_denoiser(x, 1.0, neg), cond_denoiser(x, 1.0, c)
    torch.testing.assert_close(_guided(3.0, negative=neg)(x, 1.0, c), n + 3.0 * (k - n))


@pytest.mark.parametrize("sampler", list(dc.SAMPLERS))
def test_every_sampler_accepts_guidance_and_higher_w_pushes_away_from_other_classes(sampler):
    sched = dc.NoiseSchedule.cosine(1000)
    sigmas = dc.make_sigmas(sched, 50, "karras")
    x = dc.prior_sample((300, 2), float(sigmas[0]), torch.Generator().manual_seed(2), dtype=torch.float64)
    c = torch.full((300,), 1)
    means = {}
    for w in (1.0, 4.0):
        out = dc.sample(sampler, _guided(w), x, sigmas, cond=c, generator=torch.Generator().manual_seed(3))
        assert out.shape == x.shape and torch.isfinite(out).all()
        means[w] = out.mean(0)
    # w=1 samples the requested class (the unguided mixture would put 2/3 of the samples elsewhere) ...
    assert (means[1.0] - MEANS[1]).norm() < 0.2
    # ... and w=4 overshoots it, away from the other classes' means (the familiar over-saturation of strong guidance)
    for other in (MEANS[0], MEANS[2]):
        assert (means[4.0] - other).norm() > (means[1.0] - other).norm() + 0.1


def test_cat_cond_handles_labels_dicts_and_refuses_mixtures():
    assert torch.equal(cat_cond(torch.tensor([1]), torch.tensor([2])), torch.tensor([1, 2]))
    d = cat_cond({"context": torch.zeros(1, 3, 4), "context_mask": torch.ones(1, 3, dtype=torch.bool)},
                 {"context": torch.ones(2, 3, 4), "context_mask": torch.zeros(2, 3, dtype=torch.bool)})
    assert d["context"].shape == (3, 3, 4) and d["context_mask"].shape == (3, 3)
    with pytest.raises(TypeError, match="cannot batch"):
        cat_cond(torch.tensor([1]), {"context": torch.zeros(1, 3, 4)})
    with pytest.raises(ValueError, match="scale"):
        ClassifierFreeGuidance(cond_denoiser, -1.0, label_null(3))


def test_guidance_interval_guides_inside_and_uses_the_conditional_model_outside():
    """Guidance in a limited interval (σ_lo, σ_hi]: plain guidance inside, the conditional denoiser alone outside,
    decided per sample when each sample has its own σ."""
    x = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(4)) * 3
    c = torch.tensor([0, 1, 2, 0, 1, 2])
    limited = ClassifierFreeGuidance(cond_denoiser, 4.0, label_null(3), interval=(0.5, 2.0))
    torch.testing.assert_close(limited(x, 1.0, c), _guided(4.0)(x, 1.0, c))  # inside
    torch.testing.assert_close(limited(x, 2.0, c), _guided(4.0)(x, 2.0, c))  # the upper end belongs to it
    for outside in (0.5, 3.0):  # the lower end does not
        torch.testing.assert_close(limited(x, outside, c), cond_denoiser(x, outside, c))
    sigma = torch.tensor([0.2, 1.0, 3.0, 1.5, 0.5, 2.0], dtype=torch.float64)
    inside = (sigma > 0.5) & (sigma <= 2.0)
    expected = torch.where(inside[:, None], _guided(4.0)(x, sigma, c), cond_denoiser(x, sigma, c))
    torch.testing.assert_close(limited(x, sigma, c), expected)
    for bad in ((2.0, 1.0), (-1.0, 1.0), (1.0,)):
        with pytest.raises(ValueError, match="interval"):
            ClassifierFreeGuidance(cond_denoiser, 4.0, label_null(3), interval=bad)


def test_generate_with_an_interval_covering_every_step_is_plain_guidance():
    torch.manual_seed(0)
    net = dc.UNet(dc.UNetConfig(in_channels=3, out_channels=3, image_size=8, channels=(8, 16), attention_levels=(),
                                mid_attention=False, num_classes=3, groups=4)).eval()
    with torch.no_grad():  # random weights everywhere (the output layer starts at zero: labels would not matter)
        for p in net.parameters():
            p.normal_(0.0, 0.2, generator=torch.Generator().manual_seed(p.numel()))
    sched = dc.NoiseSchedule.cosine(1000)
    kw = dict(seed=0, prediction="eps", cond=torch.tensor([0, 1]), guidance=3.0, null_cond=label_null(3), steps=4,
              shape=(3, 8, 8))
    plain = generate(net, sched, 2, **kw)
    torch.testing.assert_close(generate(net, sched, 2, guidance_interval=(0.0, float("inf")), **kw), plain)
    assert not torch.allclose(generate(net, sched, 2, guidance_interval=(1e-3, 1e-2), **kw), plain)


def test_sample_class_model_cycles_the_labels_and_is_seeded():
    from diffusion_course.recipes.pixel import sample_class_model

    torch.manual_seed(0)
    net = dc.UNet(dc.UNetConfig(in_channels=3, out_channels=3, image_size=8, channels=(8, 16), attention_levels=(),
                                mid_attention=False, num_classes=len(dc.SHAPES), groups=4)).eval()
    with torch.no_grad():  # random weights everywhere, so that the label changes the output
        for p in net.parameters():
            p.normal_(0.0, 0.2, generator=torch.Generator().manual_seed(p.numel()))
    sched = dc.NoiseSchedule.cosine(1000)
    kw = dict(steps=3, shape=(3, 8, 8))
    samples, labels = sample_class_model(net, sched, 10, "cpu", "eps", seed=5, **kw)
    again, _ = sample_class_model(net, sched, 10, "cpu", "eps", seed=5, **kw)
    unguided, _ = sample_class_model(net, sched, 10, "cpu", "eps", guidance=None, seed=5, **kw)
    other, _ = sample_class_model(net, sched, 10, "cpu", "eps", seed=6, **kw)
    assert labels.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 0, 1] and samples.shape == (10, 3, 8, 8)
    torch.testing.assert_close(samples, again)
    assert not torch.allclose(samples, unguided) and not torch.allclose(samples, other)
