"""Samplers against diffusers 0.42.1 step by step, against exact denoisers, and their contracts.

Parity set-up (float64 samples, 4×3×8×8):
- Noise levels: diffusers builds ᾱ as a float32 cumprod of float32 betas, which differs from a float64
  cumprod of the same betas by up to ~1e-6 relative (see `test_schedule_built_from_diffusers_alpha_bars`).
  We build our `NoiseSchedule` from diffusers' own ᾱ (β_t = 1 − ᾱ_t/ᾱ_{t−1}, so our float64 cumprod gives
  those ᾱ back to 1e-15): both sides then walk the same noise levels, and what is left to compare is the
  update rule plus diffusers' float32 scalar arithmetic (~1e-7).
- Model outputs: a Gaussian-mixture data set with an exact ε-predictor (`diffusion_course.analytic`).
  DDPM/DDIM call it as a network `net(x_t, t)` on integer t (ours through `Denoiser`). Euler/Heun/DPM
  give it the noise level σ of the scheduler's current entry: with fractional or rounded timesteps,
  diffusers' t for a given σ is not ours (see `test_timestep_fed_to_the_model`), so a t-conditioned model
  would see different inputs on the two sides.
- Noise: twin `torch.Generator`s seeded alike; both sides draw float64 noise of the sample's shape in
  the same order.
- Comparison: every step of both chains, in the VP view x_vp = x_ve / √(1+σ²), to 1e-5.

Mapping notes (diffusers → ours), each shown in a test below:
- DDIM steps from t to t − T//n, not to the next listed timestep: with "linspace" spacing (or trailing
  spacing with n not dividing T) the steps do not chain; ours walk the list pair by pair.
- DDIM `set_alpha_to_one=False` ends at ᾱ_0 (σ = σ_0) instead of ᾱ = 1: a σ list ending at σ_0.
- DDPM/DDIM "linspace" rounds the timesteps to integers; ours (and diffusers' Euler/Heun) keep them
  fractional. DPM-Solver's "linspace" takes n+1 rounded points and drops t=0.
- diffusers' trailing spacing has n+1 steps, the last at t = −1, for some n (61, 103, ... of T=1000).
- Euler with churn: diffusers evaluates ε at (x, σ) before adding noise and uses it at (x̂, σ̂);
  Karras et al. (2022) Algorithm 2, ours, evaluates D(x̂, σ̂).
- diffusers' DDPM draws (and scales by 1e-10) noise on a last step from t > 0; ours draws none.
- diffusers' Euler/Heun start from σ_max·N(0, I) for linspace/trailing spacing; `prior_sample` uses
  √(1+σ_max²)·N(0, I), the VE view of x_T ~ N(0, I).
- A t-conditioned network sees slightly different t for the same σ (Euler/Heun "linspace", DPM Karras).
- DPM-Solver's "leading" is not DDIM's: k·(n, …, 1) with k = T // (n+1) (n+1 points, t = 0 dropped) against our
  k·(n−1, …, 0) with k = T // n. Other noise levels, so another final sample (measured below);
  `core.spacing.leading_dpm_timesteps` gives diffusers' list for a learner porting a DPM-Solver set-up.
- 1,000-step DDPM agrees to 1e-4, not 1e-5: over 1,000 steps diffusers' float32 scalar arithmetic drifts.
Precision/quirks of diffusers, also shown: from the cosine schedule's σ_max ≈ 2e4, one big step is
float32-limited in diffusers (so cosine parity uses leading or Karras spacing); DPM-Solver with cosine +
Karras repeats t = 998 and skips σ_0 unless `set_begin_index(0)`.
"""
import math

import numpy as np
import pytest
import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
)

from diffusion_course import (
    SAMPLERS,
    Denoiser,
    NoiseSchedule,
    ddim,
    ddpm,
    dpmpp_2m,
    euler,
    get_sampler,
    heun,
    make_sigmas,
    prior_sample,
    sample,
)
from diffusion_course.core.analytic import (
    GaussianMixtureDenoiser,
    gaussian_denoiser,
    point_set_denoiser,
)
from diffusion_course.core.spacing import SPACINGS, leading_dpm_timesteps, sigma_at, timesteps_for

F64 = torch.float64
T = 1000
BETAS = {"linear": (1e-4, 0.02), "scaled_linear": (0.00085, 0.012), "squaredcos_cap_v2": (1e-4, 0.02)}
TOL = dict(atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------- helpers
@pytest.fixture(autouse=True)
def _one_thread():
    """These tensors are tiny: intra-op threads only add overhead (~8 ms an op on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _ref(cls, beta_schedule, n, spacing, **config):
    """A diffusers scheduler with explicit betas, set to n steps; "karras" means linspace + Karras sigmas."""
    lo, hi = BETAS[beta_schedule]
    if spacing == "karras":
        config.update(use_karras_sigmas=True)
        spacing = "linspace"
    ref = cls(num_train_timesteps=T, beta_schedule=beta_schedule, beta_start=lo, beta_end=hi,
              timestep_spacing=spacing, **config)
    ref.set_timesteps(n)
    return ref


def _schedule_like(ref) -> NoiseSchedule:
    """Our schedule with exactly diffusers' (float32) ᾱ, held in float64."""
    ab = ref.alphas_cumprod.to(F64)
    return NoiseSchedule(1 - ab / torch.cat([ab.new_ones(1), ab[:-1]]))


def _data() -> GaussianMixtureDenoiser:
    """Two Gaussian blobs in R^(3×8×8): the exact denoiser is nonlinear in x (soft assignment at large σ)."""
    g = torch.Generator().manual_seed(1)
    return GaussianMixtureDenoiser(0.7 * torch.randn(2, 3, 8, 8, generator=g, dtype=F64), stds=0.5, weights=[0.3, 0.7])


def _x_T() -> torch.Tensor:
    """The shared starting point x_T ~ N(0, I), in the VP view."""
    return torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=F64)


def _vp(x_ve, sigma):
    return x_ve / math.sqrt(1 + float(sigma) ** 2)


def _ve(x_vp, sigma):
    return x_vp * math.sqrt(1 + float(sigma) ** 2)


def _eps(data, x_vp, sigma):
    """The ε the exact model predicts for a VP input at noise level σ."""
    x = _ve(x_vp, sigma)
    return (x - data(x, float(sigma))) / float(sigma)


def _twins(seed=7):
    return torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)


def _assert_chains_match(steps, ref_vp, sigmas):
    """Our Step list against diffusers' VP samples after each step, compared in the VP view."""
    assert len(steps) == len(ref_vp) == len(sigmas) - 1
    for step, ref_x, s_next in zip(steps, ref_vp, sigmas[1:]):
        assert step.sigma_next == pytest.approx(float(s_next))
        torch.testing.assert_close(_vp(step.x, s_next), ref_x, **TOL, msg=lambda m: f"step {step.i}: {m}")


def _run_vp_ref(ref, x, model, **step_kw):
    """DDPM/DDIM/DPM-Solver loop on VP samples; model(x_vp, i, t) gives the ε for step i."""
    out = []
    for i, t in enumerate(ref.timesteps):
        x = ref.step(model(x, i, t), t, x, **step_kw).prev_sample
        out.append(x)
    return out


def _run_ve_ref(ref, x, data, **step_kw):
    """Euler/Heun loop on VE samples: the model sees x/√(σ²+1) at the scheduler's current σ."""
    out = []
    for t in ref.timesteps:
        inp = ref.scale_model_input(x, t)
        x = ref.step(_eps(data, inp, ref.sigmas[ref.step_index]), t, x, **step_kw).prev_sample
        out.append(x)
    return out


# ------------------------------------------------------------------------------- schedules and spacing
@pytest.mark.parametrize("beta_schedule", list(BETAS))
def test_schedule_built_from_diffusers_alpha_bars(beta_schedule):
    ref = _ref(DDPMScheduler, beta_schedule, 10, "leading")
    ours = _schedule_like(ref)
    torch.testing.assert_close(ours.alpha_bars, ref.alphas_cumprod.to(F64), atol=0, rtol=1e-13)
    # the alternative, our float64 cumprod of diffusers' float32 betas, is off by float32 round-off
    gap = (NoiseSchedule(ref.betas).alpha_bars / ref.alphas_cumprod.to(F64) - 1).abs().max().item()
    assert 1e-9 < gap < 2e-5


@pytest.mark.parametrize("cls, spacing", [
    (cls, spacing) for cls in (EulerDiscreteScheduler, HeunDiscreteScheduler) for spacing in SPACINGS
] + [(DDIMScheduler, spacing) for spacing in ("leading", "trailing", "linspace")])
@pytest.mark.parametrize("n", [10, 61, 250])
def test_spacings_equal_diffusers(cls, spacing, n):
    """Our σ list and timesteps are diffusers' (DDIM: its timesteps, whose "linspace" is rounded)."""
    ref = _ref(cls, "linear", n, spacing)
    ours = _schedule_like(ref)
    t_ref, s_ref = ref.timesteps.to(F64), getattr(ref, "sigmas", None)
    if cls is HeunDiscreteScheduler:  # Heun lists every level but the first twice
        t_ref, s_ref = t_ref[::2], torch.cat([s_ref[::2], s_ref[-1:]])
    t_ours, s_ours = timesteps_for(ours, n, spacing), make_sigmas(ours, n, spacing)
    if cls is DDIMScheduler and spacing == "linspace":
        t_ours = t_ours.round()
    # [:n]: for n = 61 diffusers' trailing spacing has an extra step at t = -1 (next test)
    fractional = spacing == "karras" or (spacing == "linspace" and cls is not DDIMScheduler)
    # fractional t: diffusers holds them in float32 (and builds "linspace" in float32)
    torch.testing.assert_close(t_ours, t_ref[:n], atol=1e-3 if fractional else 0, rtol=0)
    if s_ref is not None:
        torch.testing.assert_close(s_ours[:-1], s_ref[:n].to(F64), atol=0, rtol=1e-6)
        assert s_ours[-1] == s_ref[-1] == 0


def test_trailing_spacing_has_n_steps_where_diffusers_has_n_plus_1():
    ref = _ref(DDIMScheduler, "linear", 61, "trailing")
    assert len(ref.timesteps) == 62 and ref.timesteps[-1] == -1  # diffusers 0.42.1: a 62nd step "at t = -1"
    sigmas = make_sigmas(NoiseSchedule.linear(), 61, "trailing")
    assert len(sigmas) == 62 and sigmas[-1] == 0 and bool((sigmas.diff() < 0).all())
    bad = [n for n in range(1, T + 1) if len(timesteps_for(NoiseSchedule.linear(), n, "trailing")) != n]
    assert bad == []


def test_timestep_fed_to_the_model():
    """Which t a t-conditioned network sees for the same σ: diffusers' vs ours (`t_from_sigma`, log-linear).

    Equal for integer timesteps and for Euler/Heun's Karras sigmas (both interpolate log σ).
    Euler/Heun "linspace": σ is interpolated *linearly* in a fractional t, so t_from_sigma(σ) ≠ t
    (measured: up to 0.005 timesteps at 50 steps of the linear schedule).
    DPM-Solver with Karras sigmas rounds t to an integer but keeps the unrounded σ (≤ 0.5 timesteps).
    """
    ref = _ref(EulerDiscreteScheduler, "linear", 50, "linspace")
    ours = _schedule_like(ref)
    gap = (ours.t_from_sigma(ref.sigmas[:-1].to(F64)) - ref.timesteps.to(F64)).abs().max().item()
    assert 1e-3 < gap < 0.01
    ref = _ref(EulerDiscreteScheduler, "linear", 50, "karras")
    gap = (ours.t_from_sigma(ref.sigmas[:-1].to(F64)) - ref.timesteps.to(F64)).abs().max().item()
    assert gap < 1e-3
    ref = _ref(DPMSolverMultistepScheduler, "linear", 20, "karras")
    gap = (ours.t_from_sigma(ref.sigmas[:-1].to(F64)) - ref.timesteps.to(F64)).abs()
    assert 0.05 < gap.max().item() <= 0.5 + 1e-3
    assert bool((ref.timesteps == ref.timesteps.round()).all())


def test_prior_scale_differs_from_diffusers_euler_init_noise_sigma():
    """Ours: x_T ~ N(0, I) seen at σ_max, i.e. √(1+σ_max²)·z; diffusers' Euler (linspace/trailing): σ_max·z."""
    ref = _ref(EulerDiscreteScheduler, "linear", 10, "linspace")
    s_max = float(ref.sigmas[0])
    assert float(ref.init_noise_sigma) == pytest.approx(s_max, rel=1e-7)
    x = prior_sample((4, 3, 8, 8), s_max, torch.Generator().manual_seed(0), dtype=F64)
    torch.testing.assert_close(x, _x_T() * math.sqrt(1 + s_max**2), atol=0, rtol=1e-15)
    assert math.sqrt(1 + s_max**-2) - 1 < 3e-5  # the relative size of the difference, linear schedule


# ---------------------------------------------------------------------------------- parity: DDPM, DDIM
@pytest.mark.parametrize("beta_schedule, n, spacing", [
    ("linear", 10, "leading"), ("scaled_linear", 25, "trailing"), ("squaredcos_cap_v2", 8, "leading"),
])
def test_ddpm_matches_diffusers(beta_schedule, n, spacing):
    ref = _ref(DDPMScheduler, beta_schedule, n, spacing, clip_sample=False)
    ours, data = _schedule_like(ref), _data()
    sigmas = make_sigmas(ours, n, spacing)
    # DDPM steps to the next listed timestep and finally to ᾱ = 1: exactly our chain
    torch.testing.assert_close(sigmas, torch.cat([ours.sigma(ref.timesteps), torch.zeros(1, dtype=F64)]))
    net = data.as_net(ours)
    g_ref, g_ours = _twins()
    ref_vp = _run_vp_ref(ref, _x_T(), lambda x, i, t: net(x, t), generator=g_ref)
    steps = list(ddpm(Denoiser(net, ours), _ve(_x_T(), sigmas[0]), sigmas, generator=g_ours))
    _assert_chains_match(steps, ref_vp, sigmas)


def _ddim_levels(ref, ours):
    """The σ of each diffusers DDIM step: from t to t − T//n, or to `final_alpha_cumprod` below 0."""
    k = T // ref.num_inference_steps
    final = 0.0 if float(ref.final_alpha_cumprod) == 1.0 else float(ours.sigmas[0])
    start = ours.sigma(ref.timesteps)
    end = torch.tensor([float(ours.sigma(int(t) - k)) if t >= k else final for t in ref.timesteps], dtype=F64)
    return start, end


@pytest.mark.parametrize("beta_schedule, n, spacing, eta, alpha_to_one", [
    ("linear", 10, "leading", 0.0, True), ("scaled_linear", 20, "trailing", 0.0, False),
    ("squaredcos_cap_v2", 8, "leading", 0.0, True), ("linear", 10, "leading", 0.5, True),
    ("scaled_linear", 25, "trailing", 1.0, False), ("squaredcos_cap_v2", 8, "trailing", 0.3, True),
])
def test_ddim_matches_diffusers(beta_schedule, n, spacing, eta, alpha_to_one):
    """set_alpha_to_one=False: the last step goes to ᾱ_0, i.e. our σ list ends at σ_0 instead of 0."""
    ref = _ref(DDIMScheduler, beta_schedule, n, spacing, clip_sample=False, set_alpha_to_one=alpha_to_one)
    ours, data = _schedule_like(ref), _data()
    sigmas = make_sigmas(ours, n, spacing)
    if not alpha_to_one:
        sigmas[-1] = ours.sigmas[0]
    start, end = _ddim_levels(ref, ours)
    torch.testing.assert_close(start[1:], end[:-1])  # t − T//n is the next listed timestep: a chain
    torch.testing.assert_close(sigmas, torch.cat([start, end[-1:]]))
    net = data.as_net(ours)
    g_ref, g_ours = _twins()
    ref_vp = _run_vp_ref(ref, _x_T(), lambda x, i, t: net(x, t), eta=eta, generator=g_ref)
    steps = list(ddim(Denoiser(net, ours), _ve(_x_T(), sigmas[0]), sigmas, eta=eta, generator=g_ours))
    _assert_chains_match(steps, ref_vp, sigmas)


@pytest.mark.parametrize("spacing, n", [("linspace", 50), ("trailing", 15)])
def test_ddim_non_chain_spacings_map_to_single_steps(spacing, n):
    """diffusers' DDIM step i goes from t_i to t_i − T//n, and step i+1 restarts *from that sample* at t_{i+1}.

    With "linspace" (gaps of 20 and 21) or "trailing" with n ∤ T these differ. Mapping: each diffusers
    step is one of our steps over [σ(t_i), σ(t_i − T//n)], and the VP sample is carried to the next step
    unchanged (its VE view rescaled to σ(t_{i+1})). Walking the list as a chain instead (ours) drifts
    from diffusers by ~1e-2 (measured, linear schedule, VP: max 0.035 / RMS 0.011 for linspace/50,
    max 0.016 / RMS 0.005 for trailing/15).
    """
    ref = _ref(DDIMScheduler, "linear", n, spacing, clip_sample=False)
    ours, data = _schedule_like(ref), _data()
    net = data.as_net(ours)
    den = Denoiser(net, ours)
    start, end = _ddim_levels(ref, ours)
    assert not torch.allclose(start[1:], end[:-1])  # not a chain
    ref_vp = _run_vp_ref(ref, _x_T(), lambda x, i, t: net(x, t))
    x = _x_T()
    for i, (s, s_end) in enumerate(zip(start, end)):
        (step,) = ddim(den, _ve(x, s), [s, s_end])
        x = _vp(step.x, s_end)
        torch.testing.assert_close(x, ref_vp[i], **TOL)
    chain = torch.cat([start, end[-1:]])
    x_chain = _vp(sample("ddim", den, _ve(_x_T(), chain[0]), chain), 0.0)
    drift = (x_chain - ref_vp[-1]).abs().max().item()
    assert 1e-3 < drift < 0.1


def test_ddpm_and_ddim_linspace_is_our_linspace_rounded():
    for cls in (DDPMScheduler, DDIMScheduler):
        ref = _ref(cls, "linear", 50, "linspace")
        t = timesteps_for(_schedule_like(ref), 50, "linspace")
        assert not torch.equal(t, t.round())
        assert torch.equal(t.round(), ref.timesteps.to(F64))


# --------------------------------------------------------------------- parity: Euler, Heun, DPM-Solver
@pytest.mark.parametrize("beta_schedule, n, spacing", [
    ("linear", 10, "linspace"), ("scaled_linear", 25, "karras"), ("squaredcos_cap_v2", 12, "leading"),
    ("linear", 15, "trailing"),
])
def test_euler_matches_diffusers(beta_schedule, n, spacing):
    ref = _ref(EulerDiscreteScheduler, beta_schedule, n, spacing)
    ours, data = _schedule_like(ref), _data()
    sigmas = make_sigmas(ours, n, spacing)
    torch.testing.assert_close(sigmas, ref.sigmas.to(F64), atol=0, rtol=1e-6)
    ref_vp = [_vp(x, s) for x, s in zip(_run_ve_ref(ref, _ve(_x_T(), sigmas[0]), data), sigmas[1:])]
    steps = list(euler(data, _ve(_x_T(), sigmas[0]), sigmas))
    _assert_chains_match(steps, ref_vp, sigmas)


@pytest.mark.parametrize("beta_schedule, n, spacing", [
    ("linear", 10, "linspace"), ("scaled_linear", 8, "trailing"), ("squaredcos_cap_v2", 12, "karras"),
])
def test_heun_matches_diffusers(beta_schedule, n, spacing):
    ref = _ref(HeunDiscreteScheduler, beta_schedule, n, spacing, clip_sample=False)
    ours, data = _schedule_like(ref), _data()
    sigmas = make_sigmas(ours, n, spacing)
    torch.testing.assert_close(sigmas, torch.cat([ref.sigmas[::2], ref.sigmas[-1:]]).to(F64), atol=0, rtol=1e-6)
    ref_ve = _run_ve_ref(ref, _ve(_x_T(), sigmas[0]), data)
    assert len(ref_ve) == 2 * n - 1  # model calls: two per step, one on the last step to σ = 0
    ref_ve = ref_ve[1::2] + ref_ve[-1:]  # the state after each full (Euler + correction) step
    steps = list(heun(data, _ve(_x_T(), sigmas[0]), sigmas))
    assert steps[-1].nfe == 2 * n - 1
    _assert_chains_match(steps, [_vp(x, s) for x, s in zip(ref_ve, sigmas[1:])], sigmas)


def _dpm_sigmas(ours, n, spacing):
    """DPM-Solver's "linspace" is n+1 rounded points from T−1 to 0 with t = 0 dropped; its "leading" is k·(n, …, 1)
    with k = T // (n+1), also n+1 points with t = 0 dropped (`leading_dpm_timesteps`); others are ours."""
    if spacing == "leading":
        t = leading_dpm_timesteps(ours, n)
    elif spacing == "linspace":
        t = torch.from_numpy(np.linspace(0, T - 1, n + 1).round()[::-1][:-1].copy())
    else:
        return make_sigmas(ours, n, spacing)
    return torch.cat([sigma_at(ours, t), torch.zeros(1, dtype=F64)])


@pytest.mark.parametrize("beta_schedule, n, spacing", [
    ("linear", 10, "trailing"), ("scaled_linear", 20, "karras"), ("squaredcos_cap_v2", 16, "karras"),
    ("linear", 12, "linspace"), ("scaled_linear", 20, "leading"),
])
def test_dpmpp_2m_matches_diffusers(beta_schedule, n, spacing):
    ref = _ref(DPMSolverMultistepScheduler, beta_schedule, n, spacing, algorithm_type="dpmsolver++",
               solver_order=2)
    ref.set_begin_index(0)  # see test_dpm_solver_cosine_karras_repeats_timesteps
    ours, data = _schedule_like(ref), _data()
    sigmas = _dpm_sigmas(ours, n, spacing)
    torch.testing.assert_close(sigmas, ref.sigmas.to(F64), atol=0, rtol=1e-6)
    ref_vp = _run_vp_ref(ref, _x_T(), lambda x, i, t: _eps(data, x, ref.sigmas[i]))
    steps = list(dpmpp_2m(data, _ve(_x_T(), sigmas[0]), sigmas))
    _assert_chains_match(steps, ref_vp, sigmas)


def test_dpm_solver_leading_is_not_ddim_leading():
    """The same "leading" name, other noise levels: the final samples differ (see the module docstring)."""
    ref = _ref(DPMSolverMultistepScheduler, "linear", 20, "leading", algorithm_type="dpmsolver++", solver_order=2)
    ours, data = _schedule_like(ref), _data()
    assert ref.timesteps.tolist() == leading_dpm_timesteps(ours, 20).tolist() == list(range(940, 0, -47))
    assert timesteps_for(ours, 20, "leading").tolist() == list(range(950, -1, -50))
    final = [list(dpmpp_2m(data, _ve(_x_T(), s[0]), s))[-1].x for s in
             (make_sigmas(ours, 20, "leading"), _dpm_sigmas(ours, 20, "leading"))]
    gap = (final[0] - final[1]).abs().max().item()
    assert gap > 0.05, gap


def test_ddpm_1000_steps_drifts_from_diffusers_by_its_float32_arithmetic():
    ref = _ref(DDPMScheduler, "linear", T, "leading", clip_sample=False)
    ours, data = _schedule_like(ref), _data()
    net, sigmas = data.as_net(ours), make_sigmas(ours, T, "leading")
    g_ref, g_ours = _twins()
    ref_vp = _run_vp_ref(ref, _x_T(), lambda x, i, t: net(x, t), generator=g_ref)
    steps = list(ddpm(Denoiser(net, ours), _ve(_x_T(), sigmas[0]), sigmas, generator=g_ours))
    drift = (steps[-1].x - ref_vp[-1]).abs().max().item()
    assert 1e-6 < drift < 1e-4, drift


def test_euler_churn_matches_diffusers_when_given_its_model_outputs():
    """diffusers' churn: ε = model(x, σ) *before* the noise, then x̂ = x + √(σ̂²−σ²)·z and x̂₀ = x̂ − σ̂ ε.

    Ours (Karras et al. 2022, Alg. 2) evaluates D(x̂, σ̂) after the noise. Given a denoiser that returns
    diffusers' x̂ − σ̂ ε, and the same z, each of our steps (over [σ_i, σ_{i+1}], churn/n per step)
    is diffusers' step. With the real model the two chains differ a lot: measured RMS 0.29 (max 0.89)
    at the end, against a sample std of 0.79 (10 steps, γ = 0.3 on 7 of them).
    """
    n, churn, s_tmax = 10, 3.0, 20.0  # γ = 0.3 on the steps with σ ≤ 20 only
    ref = _ref(EulerDiscreteScheduler, "linear", n, "linspace")
    ours, data = _schedule_like(ref), _data()
    sigmas = make_sigmas(ours, n, "linspace")
    g_ref, g_ours = _twins()
    x = _ve(_x_T(), sigmas[0])
    for i, t in enumerate(ref.timesteps):
        eps = _eps(data, ref.scale_model_input(x, t), ref.sigmas[ref.step_index])
        ref_x = ref.step(eps, t, x, s_churn=churn, s_tmax=s_tmax, generator=g_ref).prev_sample
        (step,) = euler(lambda xh, sh, cond=None: xh - sh * eps, x, sigmas[i:i + 2], generator=g_ours,
                        churn=churn / n, s_tmax=s_tmax)
        torch.testing.assert_close(_vp(step.x, sigmas[i + 1]), _vp(ref_x, sigmas[i + 1]), **TOL)
        x = ref_x
    # the size of the difference: our Algorithm 2 vs diffusers' chain, same noise
    ref = _ref(EulerDiscreteScheduler, "linear", n, "linspace")
    g_ref, g_ours = _twins()
    ref_end = _run_ve_ref(ref, _ve(_x_T(), sigmas[0]), data, s_churn=churn, s_tmax=s_tmax, generator=g_ref)[-1]
    ours_end = sample(euler, data, _ve(_x_T(), sigmas[0]), sigmas, generator=g_ours, churn=churn,
                      s_tmax=s_tmax)
    rms = (ours_end - ref_end).pow(2).mean().sqrt().item()
    assert 0.1 < rms < 0.5


def test_ddpm_last_step_noise_from_t_above_zero_is_negligible():
    """Trailing spacing ends at t = T/n − 1 > 0: diffusers draws noise there, scaled by √1e-20 (its clamp)."""
    ref = _ref(DDPMScheduler, "linear", 10, "trailing", clip_sample=False)
    data, x = _data(), _x_T()
    net = data.as_net(_schedule_like(ref))
    t = ref.timesteps[-1]
    assert t > 0
    a = ref.step(net(x, t), t, x, generator=torch.Generator().manual_seed(0)).prev_sample
    b = ref.step(net(x, t), t, x, generator=torch.Generator().manual_seed(1)).prev_sample
    assert 0 < (a - b).abs().max().item() < 1e-9


def test_dpm_solver_cosine_karras_repeats_timesteps():
    """diffusers' DPM-Solver truncates (does not round) Karras timesteps for squaredcos_cap_v2, so several
    steps share t = 998 and its first-step index lookup starts at σ_1, skipping σ_0 (a diffusers quirk, not
    a mapping). `set_begin_index(0)` restores the walk σ_0 → σ_1 → ..., as the parity test above does."""
    ref = _ref(DPMSolverMultistepScheduler, "squaredcos_cap_v2", 16, "karras", algorithm_type="dpmsolver++")
    assert int((ref.timesteps == ref.timesteps[0]).sum()) > 1
    x = _x_T()
    ref.step(_eps(_data(), x, ref.sigmas[0]), ref.timesteps[0], x)
    assert ref.step_index == 2  # the first step went σ_1 → σ_2


def test_cosine_sigma_max_is_float32_limited_in_diffusers():
    """squaredcos_cap_v2 reaches σ_max ≈ 2e4, and trailing spacing jumps from there to σ ≈ 7.7 in one step.

    diffusers computes σ_next − σ and √(σ²+1) in float32 (and Euler casts the sample to float32): at
    σ ≈ 2e4 that is ~1e-3 absolute in the VE sample. Measured: 3e-4 (VP) after Euler's first step, ~0.1 after
    Heun's, whose correction multiplies the slope error by |σ_next − σ|/2 ≈ 1e4. With Karras spacing
    (ratios σ_i/σ_{i+1} of ~1.5 instead of 2600) the cosine parity tests above agree to 1e-6.
    """
    ref = _ref(EulerDiscreteScheduler, "squaredcos_cap_v2", 12, "trailing")
    ours, data = _schedule_like(ref), _data()
    s0, s1 = (float(v) for v in make_sigmas(ours, 12, "trailing")[:2])
    x = _ve(_x_T(), s0)
    (step,) = euler(data, x, [s0, s1])
    ref_x = _run_ve_ref(ref, x, data)[0]
    assert 1e-5 < (_vp(step.x, s1) - _vp(ref_x, s1)).abs().max().item() < 1e-3
    ref = _ref(HeunDiscreteScheduler, "squaredcos_cap_v2", 12, "trailing", clip_sample=False)
    (step,) = heun(data, x, [s0, s1], max_ratio=math.inf)  # diffusers' Heun has no guard on huge steps
    ref_x = _run_ve_ref(ref, x, data)[1]
    assert 1e-2 < (_vp(step.x, s1) - _vp(ref_x, s1)).abs().max().item() < 1


# ------------------------------------------------------------------------------------- exact denoisers
def test_mixture_denoiser_is_tweedie():
    """D(x, σ) = x + σ² ∇ log p_σ(x) (Tweedie), with p_σ = Σ_k w_k N(μ_k, s_k² + σ²) and autograd."""
    g = torch.Generator().manual_seed(0)
    means, w = torch.randn(3, 2, generator=g, dtype=F64), [1, 2, 3]
    stds = torch.tensor([[0.3], [0.0], [1.2]], dtype=F64)  # one a point mass
    den = GaussianMixtureDenoiser(means, stds, w)
    x = (3 * torch.randn(50, 2, generator=g, dtype=F64)).requires_grad_()
    for sigma in (0.05, 0.7, 4.0):
        var = stds**2 + sigma**2
        logp = torch.logsumexp(torch.log(torch.tensor(w, dtype=F64) / 6)
                               - 0.5 * ((x[:, None] - means) ** 2 / var + torch.log(2 * math.pi * var)).sum(-1), 1)
        (score,) = torch.autograd.grad(logp.sum(), x)
        torch.testing.assert_close(den(x.detach(), sigma), x.detach() + sigma**2 * score, atol=1e-10, rtol=1e-10)


def test_gaussian_and_point_set_closed_forms():
    mean, std = torch.tensor([1.0, -2.0], dtype=F64), torch.tensor([0.5, 2.0], dtype=F64)
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    torch.testing.assert_close(gaussian_denoiser(mean, std)(x, 1.5), mean + std**2 / (std**2 + 1.5**2) * (x - mean))
    points = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]], dtype=F64)
    den = point_set_denoiser(points)
    w = torch.softmax(-((x[:, None] - points) ** 2).sum(-1) / (2 * 0.8**2), dim=1)
    torch.testing.assert_close(den(x, 0.8), w @ points)
    nearest = points[((x[:, None] - points) ** 2).sum(-1).argmin(1)]
    torch.testing.assert_close(den(x, 1e-3), nearest)  # small σ: snap to the nearest point
    torch.testing.assert_close(den(x, 1e4), points.mean(0).expand(8, 2), atol=1e-6, rtol=0)  # large σ: the mean
    with pytest.raises(ValueError, match="shape"):
        den(torch.zeros(4, 3), 1.0)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        den(x, 0.0)


def test_mixture_draws_follow_the_mixture():
    den = GaussianMixtureDenoiser([[-1.0], [2.0]], stds=[[0.5], [1.0]], weights=[1, 3])
    a = den.sample(20000, torch.Generator().manual_seed(0))
    assert torch.equal(a, den.sample(20000, torch.Generator().manual_seed(0))) and a.shape == (20000, 1)
    mean = 0.25 * -1.0 + 0.75 * 2.0
    var = 0.25 * (0.25 + 1.0) + 0.75 * (1.0 + 4.0) - mean**2
    assert a.mean().item() == pytest.approx(mean, abs=0.03)
    assert a.var().item() == pytest.approx(var, rel=0.03)
    with pytest.raises(ValueError, match="weights"):
        GaussianMixtureDenoiser([[0.0], [1.0]], weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="stds"):
        GaussianMixtureDenoiser([[0.0], [1.0]], stds=-1.0)
    with pytest.raises(ValueError, match="means"):
        GaussianMixtureDenoiser([0.0, 1.0])


@pytest.mark.parametrize("kind", ["linear", "cosine", "scaled_linear"])
@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_denoiser_wrapper_reproduces_the_exact_denoiser(kind, prediction):
    """`Denoiser` around the exact ε-, x₀- or v-network gives D back in float64, at fractional t too.

    Karras levels lie off the integer grid, up to σ_max where the cosine schedule's log σ is steepest.
    """
    sched, data = NoiseSchedule.from_kind(kind), _data()
    den = Denoiser(data.as_net(sched, prediction), sched, prediction=prediction)
    for sigma in make_sigmas(sched, 7, "karras")[:-1]:
        x = _ve(_x_T(), sigma)
        torch.testing.assert_close(den(x, sigma), data(x, sigma), atol=1e-9, rtol=1e-9)
    with pytest.raises(ValueError, match="prediction must be one of"):
        data.as_net(sched, "score")


# --------------------------------------------------------------------- samplers with exact denoisers
MU, STD = torch.tensor([1.0, -2.0], dtype=F64), torch.tensor([0.5, 2.0], dtype=F64)


def _gaussian_runs(name, steps, n_points=1000):
    """(samples, exact ODE solutions, σ_max) of N(MU, STD²) for each step count, from one standardised x_T.

    x_T is antithetic and scaled to sample mean 0 and std 1, so the moments carry no Monte Carlo error
    (every sampler is affine in x for Gaussian data). The exact probability-flow ODE keeps
    (x − μ)/√(s² + σ²) constant, so x(0) = μ + s/√(s² + σ_max²) · (x_T − μ).
    """
    z = torch.randn(n_points, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    z = torch.cat([z, -z])
    z = z / z.std(0)
    den, sched = gaussian_denoiser(MU, STD), NoiseSchedule.linear()
    out = []
    for n in steps:
        sig = make_sigmas(sched, n, "trailing")
        x_T = z * math.sqrt(1 + float(sig[0]) ** 2)
        exact = MU + STD / (STD**2 + sig[0] ** 2).sqrt() * (x_T - MU)
        out.append((sample(name, den, x_T, sig), exact, float(sig[0])))
    return out


@pytest.mark.parametrize("name", ["ddim", "euler", "heun", "dpmpp_2m"])
def test_deterministic_samplers_converge_to_gaussian_data(name):
    """Sample mean and std approach the exact ODE's, which are μ and s up to the prior's mismatch.

    The prior N(0, 1 + σ_max²) is not the true marginal N(μ, s² + σ_max²): the exact ODE keeps a mean
    offset μ·s/√(s² + σ_max²) (≤ 0.026 here) and its std is s·√((1 + σ_max²)/(s² + σ_max²)) ≈ s.
    """
    mean_err, std_err = [], []
    for out, exact, s_max in _gaussian_runs(name, (4, 8, 32, 128)):
        mean_err.append((out.mean(0) - exact.mean(0)).abs().max().item())
        std_err.append((out.std(0) / exact.std(0) - 1).abs().max().item())
    assert all(a > b for a, b in zip(mean_err, mean_err[1:])), mean_err
    assert all(a > b for a, b in zip(std_err, std_err[1:])), std_err
    assert mean_err[-1] < 1e-3 and std_err[-1] < 0.03
    torch.testing.assert_close(exact.mean(0), MU, atol=0.03, rtol=0)  # the target is the data distribution
    torch.testing.assert_close(exact.std(0), STD, atol=0, rtol=1e-4)
    torch.testing.assert_close(out.mean(0), MU, atol=0.03, rtol=0)
    torch.testing.assert_close(out.std(0), STD, atol=0, rtol=0.03)


def test_higher_order_solvers_beat_euler():
    """Max error against the exact ODE solution: Euler (= DDIM) halves it per doubling of the steps (1st order);
    Heun and DPM-Solver++(2M) are smaller at every step count and fall faster (measured ratios 3-6)."""
    steps = (8, 16, 32, 64)
    errs = {name: [(out - exact).abs().max().item() for out, exact, _ in _gaussian_runs(name, steps, 200)]
            for name in ("euler", "heun", "dpmpp_2m")}
    for name in ("heun", "dpmpp_2m"):
        assert all(e < e_euler for e, e_euler in zip(errs[name], errs["euler"])), errs
        assert all(a / b > 2.5 for a, b in zip(errs[name], errs[name][1:])), errs
    assert all(1.7 < a / b < 2.3 for a, b in zip(errs["euler"], errs["euler"][1:])), errs


@pytest.mark.parametrize("name", ["ddpm", "ddim", "euler", "heun", "dpmpp_2m"])
def test_samplers_land_on_a_point_set_with_its_weights(name):
    """Data = 4 points with weights 0.1..0.4: every sample ends on a point, in the right proportions."""
    points = torch.tensor([[2.0, 2.0], [2.0, -2.0], [-2.0, 2.0], [-2.0, -2.0]], dtype=F64)
    weights = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=F64)
    den = GaussianMixtureDenoiser(points, 0.0, weights)
    sig = make_sigmas(NoiseSchedule.linear(), 25, "trailing")
    x = prior_sample((4000, 2), float(sig[0]), torch.Generator().manual_seed(0), dtype=F64)
    out = sample(name, den, x, sig, generator=torch.Generator().manual_seed(1))
    dist = torch.cdist(out, points)
    assert dist.min(1).values.max() < 1e-6
    share = torch.bincount(dist.argmin(1), minlength=4).to(F64) / len(out)
    torch.testing.assert_close(share, weights, atol=0.03, rtol=0)


def test_ddim_eta0_is_euler_and_first_order_dpm_solver():
    """In σ: DDIM(η=0) x' = x̂₀ + σ' ε̂ is Euler's step, and DPM-Solver++'s first-order step
    (σ'/σ) x − (e^{−h} − 1) x̂₀ with h = log(σ/σ') is the same update. The 2M solver uses it on its
    first step and on the last (to σ = 0), so on two steps it is DDIM; from three steps on it is not."""
    data = _data()
    sched = NoiseSchedule.scaled_linear()
    sig = make_sigmas(sched, 12, "karras")
    x = _ve(_x_T(), sig[0])
    torch.testing.assert_close(sample("euler", data, x, sig), sample("ddim", data, x, sig), atol=1e-12, rtol=1e-12)
    for s, s_next in [(sig[0], sig[1]), (sig[5], sig[6]), (3.0, 0.2)]:
        y = _ve(_x_T(), s)
        (a,), (b,) = ddim(data, y, [s, s_next]), dpmpp_2m(data, y, [s, s_next])
        torch.testing.assert_close(a.x, b.x, atol=1e-12, rtol=1e-12)
    two = make_sigmas(sched, 2, "trailing")
    torch.testing.assert_close(sample("dpmpp_2m", data, _ve(_x_T(), two[0]), two),
                               sample("ddim", data, _ve(_x_T(), two[0]), two), atol=1e-12, rtol=1e-12)
    gap = (sample("dpmpp_2m", data, x, sig) - sample("ddim", data, x, sig)).abs().max().item()
    assert gap > 1e-3


@pytest.mark.parametrize("spacing", ["trailing", "karras"])
def test_ddim_eta1_is_ddpm(spacing):
    """η = 1 gives DDPM's ancestral step: same noise, same samples."""
    data, sig = _data(), make_sigmas(NoiseSchedule.cosine(), 10, spacing)
    x = _ve(_x_T(), sig[0])
    a = sample("ddim", data, x, sig, eta=1.0, generator=torch.Generator().manual_seed(3))
    b = sample("ddpm", data, x, sig, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)
    c = sample("ddim", data, x, sig, eta=0.5, generator=torch.Generator().manual_seed(3))
    assert (a - c).abs().max() > 1e-3


@pytest.mark.parametrize("t", [1, 37, 500, 999])
def test_ddpm_step_is_the_schedules_posterior(t):
    """One DDPM step t → t−1 given x̂₀ draws from q(x_{t−1} | x_t, x̂₀): `NoiseSchedule.posterior` (Ho et al. 6-7)."""
    sched = NoiseSchedule.linear()
    g = torch.Generator().manual_seed(0)
    x0, x_t = torch.randn(2, 4, 3, 8, 8, generator=g, dtype=F64)
    s, s_prev = sched.sigma(t), sched.sigma(t - 1)
    (step,) = ddpm(lambda x, sigma, cond=None: x0, _ve(x_t, s), [s, s_prev], generator=torch.Generator().manual_seed(5))
    mean, var = sched.posterior(x0, x_t, t)
    z = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(5), dtype=F64)
    torch.testing.assert_close(_vp(step.x, s_prev), mean + var.sqrt() * z, atol=1e-10, rtol=1e-10)


def test_heun_keeps_huge_sigma_steps_first_order():
    """A step shrinking σ more than `max_ratio`-fold is an Euler step (one evaluation), and only that step."""
    sig = make_sigmas(NoiseSchedule.cosine(), 6, "trailing")
    assert float(sig[0] / sig[1]) > 1000  # cosine + trailing: σ ≈ 2e4 → ~5 in the first step
    data, x = _data(), _ve(_x_T(), sig[0])
    guarded = list(heun(data, x, sig))
    assert [s.nfe for s in guarded] == [1, 3, 5, 7, 9, 10]
    (first_euler,) = euler(data, x, sig[:2])
    torch.testing.assert_close(guarded[0].x, first_euler.x, atol=0, rtol=0)
    unguarded = list(heun(data, x, sig, max_ratio=math.inf))
    assert unguarded[-1].nfe == 11
    assert not torch.allclose(unguarded[0].x, guarded[0].x)
    with pytest.raises(ValueError, match="max_ratio"):
        list(heun(data, x, sig, max_ratio=1.0))


def test_heun_makes_2n_minus_1_network_evaluations():
    calls = []

    def counting(x, sigma, cond=None):
        calls.append(float(sigma))
        return _data()(x, sigma)

    sig = make_sigmas(NoiseSchedule.linear(), 6, "karras")
    steps = list(heun(counting, _ve(_x_T(), sig[0]), sig))
    assert len(calls) == 11 and [s.nfe for s in steps] == [2, 4, 6, 8, 10, 11]
    calls.clear()
    steps = list(heun(counting, _ve(_x_T(), sig[0]), sig[:-1]))  # ending above 0: every step corrects
    assert len(calls) == 10 and steps[-1].nfe == 10
    for name in ("ddpm", "ddim", "euler", "dpmpp_2m"):
        assert [s.nfe for s in get_sampler(name)(_data(), _ve(_x_T(), sig[0]), sig)] == list(range(1, 7))


# --------------------------------------------------------------------------- determinism and bad input
@pytest.mark.parametrize("name, options, stochastic", [
    ("ddpm", {}, True), ("ddim", {"eta": 0.5}, True), ("euler", {"churn": 2.0}, True),
    ("heun", {"churn": 2.0}, True), ("ddim", {}, False), ("euler", {}, False), ("heun", {}, False),
    ("dpmpp_2m", {}, False),
])
def test_same_seed_same_samples(name, options, stochastic):
    """Identical on CPU for the same seed; float32 in, float32 out; the noise only from `generator`."""
    sig = make_sigmas(NoiseSchedule.linear(), 10, "trailing")
    data = _data()

    def run(seed_x, seed_noise):
        x = prior_sample((4, 3, 8, 8), float(sig[0]), torch.Generator().manual_seed(seed_x))
        return sample(name, data, x, sig, generator=torch.Generator().manual_seed(seed_noise), **options)

    a = run(0, 0)
    assert a.dtype == torch.float32 and torch.isfinite(a).all()
    assert torch.equal(a, run(0, 0))
    assert not torch.equal(a, run(1, 0))
    assert torch.equal(a, run(0, 1)) != stochastic


@pytest.mark.parametrize("sigmas", [
    [1.0, 2.0, 0.0], [1.0, 1.0, 0.0], [1.0, -0.5], [5.0], [1.0, float("nan"), 0.0], [float("inf"), 1.0, 0.0],
])
@pytest.mark.parametrize("name", list(SAMPLERS))
def test_bad_sigmas_are_refused(name, sigmas):
    with pytest.raises(ValueError, match="sigmas"):
        sample(name, _data(), _x_T(), sigmas)


def test_bad_names_and_options_are_refused():
    sig = make_sigmas(NoiseSchedule.linear(), 4, "trailing")
    with pytest.raises(ValueError, match="sampler must be one of .*'euler_a'"):
        get_sampler("euler_a")
    with pytest.raises(ValueError, match="sampler must be one of"):
        sample("plms", _data(), _x_T(), sig)
    with pytest.raises(ValueError, match="eta must be >= 0, got -0.1"):
        sample("ddim", _data(), _x_T(), sig, eta=-0.1)
    with pytest.raises(TypeError):
        sample("euler", _data(), _x_T(), sig, eta=0.5)  # an option the sampler does not have
    with pytest.raises(ValueError, match="sigma must be > 0"):
        Denoiser(_data().as_net(NoiseSchedule.linear()), NoiseSchedule.linear())(_x_T(), 0.0)
