"""The diffusion core: the few files a reader needs to understand diffusion itself.

    schedules.py   NoiseSchedule: every noise-level quantity (β, ᾱ, σ, SNR) and the notation table
    spacing.py     which noise levels a sampler visits: decreasing lists of σ ending at 0
    denoisers.py   the model contract: a network predicting ε, x₀ or v becomes a denoiser D(x, σ) → x̂₀
    samplers.py    DDPM, DDIM, Euler, Heun, DPM-Solver++(2M): one short function each, one signature
    guidance.py    classifier-free guidance: a denoiser wrapped into a denoiser
    experts.py     one network for high noise, another for low noise, behind one call
    loss.py        the training objective
    generation.py  `generate`: n samples from a model, batched and seeded (the one public sampling entry point)
    analytic.py    exact denoisers of Gaussian, mixture and point-set data, for tests and lessons

Nothing here imports networks, data or training: the core works on any callable that follows the contract.
"""
