"""The schedule object against diffusers, closed forms and its own invariants."""
import math

import pytest
import torch
from diffusers import DDPMScheduler

from diffusion_course import NoiseSchedule

DIFFUSERS_NAMES = {"linear": "linear", "scaled_linear": "scaled_linear", "cosine": "squaredcos_cap_v2"}
BETAS = {"linear": (1e-4, 0.02), "scaled_linear": (0.00085, 0.012), "cosine": (1e-4, 0.02)}


def _pair(kind, T):
    lo, hi = BETAS[kind]
    ref = DDPMScheduler(num_train_timesteps=T, beta_schedule=DIFFUSERS_NAMES[kind], beta_start=lo, beta_end=hi)
    kw = {} if kind == "cosine" else dict(beta_start=lo, beta_end=hi)
    return NoiseSchedule.from_kind(kind, T, **kw), ref


@pytest.mark.parametrize("kind", ["linear", "scaled_linear", "cosine"])
@pytest.mark.parametrize("T", [1000, 250, 4000])
def test_betas_and_alpha_bars_match_diffusers(kind, T):
    ours, ref = _pair(kind, T)
    # diffusers works in float32, so 1e-6 absolute is its rounding, not ours
    torch.testing.assert_close(ours.betas, ref.betas.double(), atol=1e-6, rtol=0)
    torch.testing.assert_close(ours.alpha_bars, ref.alphas_cumprod.double(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", ["linear", "scaled_linear", "cosine"])
def test_forward_noising_matches_diffusers_add_noise(kind):
    ours, ref = _pair(kind, 1000)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(16, 3, 8, 8, generator=g)
    noise = torch.randn(16, 3, 8, 8, generator=g)
    t = torch.randint(0, 1000, (16,), generator=g)
    torch.testing.assert_close(ours.q_sample(x0, t, noise), ref.add_noise(x0, noise, t), atol=2e-6, rtol=1e-5)


def test_cosine_reaches_near_zero_signal_and_clips_beta():
    s = NoiseSchedule.cosine(1000)
    assert s.betas.max() == pytest.approx(0.999)
    assert s.alpha_bars[-1] < 1e-8
    # the linear schedule's terminal SNR is not zero: ᾱ_T ≈ 4e-5 leaves ~0.6% of the signal
    assert 3e-5 < NoiseSchedule.linear(1000).alpha_bars[-1] < 5e-5


def test_views_are_consistent():
    s = NoiseSchedule.linear(1000)
    t = torch.arange(1000)
    torch.testing.assert_close(s.snr(t), 1 / s.sigma(t) ** 2)
    torch.testing.assert_close(s.signal_scale(t) ** 2 + s.noise_scale(t) ** 2, torch.ones(1000, dtype=torch.float64))
    torch.testing.assert_close(s.sigma(t), s.sigmas)
    assert (s.log_snr(t).diff() < 0).all(), "log-SNR must fall with t"
    torch.testing.assert_close(s.alpha_bar_from_sigma(s.sigmas), s.alpha_bars)
    # σ → t inverts t → σ on the grid, and interpolates between grid points
    torch.testing.assert_close(s.t_from_sigma(s.sigmas), t.double(), atol=1e-9, rtol=0)
    mid = s.t_from_sigma((s.sigmas[10].log() + s.sigmas[11].log()).div(2).exp())
    assert 10 < float(mid) < 11


def test_iterated_one_step_noising_matches_closed_form_in_distribution():
    """T Markov steps q(x_t | x_{t-1}) give the same Gaussian as the closed-form jump q(x_t | x_0).

    With n = 40,000 chains the standard error of a sample mean is √((1−ᾱ)/n) ≤ 0.005 and of a sample
    variance ≈ (1−ᾱ)·√(2/n) ≤ 0.0071; we allow 5 standard errors, so a true mismatch of 3% in the
    mean or variance fails while sampling noise passes with probability > 0.999999.
    """
    s = NoiseSchedule.linear(1000)
    g = torch.Generator().manual_seed(0)
    n = 40_000
    x0 = torch.full((n,), 0.8, dtype=torch.float64)
    x = x0.clone()
    for t in range(s.T):
        x = s.q_step(x, t, torch.randn(n, generator=g, dtype=torch.float64))
        if t in (0, 9, 99, 499, 999):
            ab = float(s.alpha_bar(t))
            mean_se, var_se = math.sqrt((1 - ab) / n), (1 - ab) * math.sqrt(2 / (n - 1))
            assert abs(x.mean().item() - math.sqrt(ab) * 0.8) < 5 * mean_se, t
            assert abs(x.var().item() - (1 - ab)) < 5 * var_se, t


def test_posterior_matches_product_of_gaussians():
    """q(x_{t-1}|x_t,x_0) ∝ q(x_t|x_{t-1}) q(x_{t-1}|x_0): precisions add, means combine by precision."""
    s = NoiseSchedule.cosine(1000)
    g = torch.Generator().manual_seed(1)
    x0, xt = torch.randn(6, 5, generator=g, dtype=torch.float64), torch.randn(6, 5, generator=g, dtype=torch.float64)
    t = torch.tensor([1, 2, 50, 400, 998, 999])
    mean, var = s.posterior(x0, xt, t)
    a, b = s.alphas[t][:, None], s.betas[t][:, None]
    ab_prev = s.alpha_bars[t - 1][:, None]
    precision = a / b + 1 / (1 - ab_prev)
    torch.testing.assert_close(var, (1 / precision).expand_as(var))
    torch.testing.assert_close(mean, (a.sqrt() * xt / b + ab_prev.sqrt() * x0 / (1 - ab_prev)) / precision)


def test_posterior_at_t0_is_clean_data():
    s = NoiseSchedule.linear(100)
    x0, xt = torch.randn(3, 4), torch.randn(3, 4)
    mean, var = s.posterior(x0, xt, 0)
    torch.testing.assert_close(mean, x0)
    assert float(var.abs().max()) == 0.0


def test_posterior_variance_matches_diffusers():
    ours, ref = _pair("linear", 1000)
    for t in (1, 10, 500, 999):
        _, var = ours.posterior(torch.zeros(1), torch.zeros(1), t)
        # diffusers forms 1 − ᾱ in float32: its relative error ≈ 6e-8/(1 − ᾱ_t), up to ~2e-4 at t=1
        assert float(var) == pytest.approx(float(ref._get_variance(t)), rel=1e-3 if t < 100 else 1e-5)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: NoiseSchedule.linear(0), "T"),
        (lambda: NoiseSchedule.linear(-5), "T"),
        (lambda: NoiseSchedule.linear(10.5), "T"),
        (lambda: NoiseSchedule.linear(100, beta_start=0.0), "beta_start"),
        (lambda: NoiseSchedule.linear(100, beta_end=1.5), "beta_end"),
        (lambda: NoiseSchedule.cosine(100, s=-1), "offset"),
        (lambda: NoiseSchedule(torch.tensor([0.1, 1.0])), "between 0 and 1"),
        (lambda: NoiseSchedule(torch.zeros(0)), "non-empty"),
        (lambda: NoiseSchedule.from_kind("quadratic"), "kind"),
    ],
)
def test_bad_schedule_arguments_raise_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_timesteps_and_shapes_raise_clear_errors():
    s = NoiseSchedule.linear(100)
    x = torch.zeros(4, 2)
    with pytest.raises(IndexError, match=r"\[0, 99\]"):
        s.q_sample(x, 100, torch.zeros(4, 2))
    with pytest.raises(IndexError, match=r"\[0, 99\]"):
        s.alpha_bar(-1)
    with pytest.raises(TypeError, match="integer"):
        s.alpha_bar(torch.tensor([1.5]))
    with pytest.raises(ValueError, match="same shape"):
        s.q_sample(x, 3, torch.zeros(4, 3))
    with pytest.raises(ValueError, match="one per batch item"):
        s.q_sample(x, torch.tensor([1, 2, 3]), torch.zeros(4, 2))
