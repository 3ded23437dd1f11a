"""Interactive explorers for the notebooks. Each has a plain drawing function (used headless and by tests)
and a thin ipywidgets wrapper around it (`interactive_output`, sliders update on release).
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

from ..core.schedules import SCHEDULE_KINDS, NoiseSchedule
from .plotting import to_display


def build_schedule(kind: str, T: int, beta_start: float, beta_end: float, cosine_s: float) -> NoiseSchedule:
    """The schedule a widget's settings describe (β range for linear kinds, offset s for cosine)."""
    if kind == "cosine":
        return NoiseSchedule.cosine(T, s=cosine_s)
    return NoiseSchedule.from_kind(kind, T, beta_start=beta_start, beta_end=beta_end)


def draw_schedule_explorer(image: Tensor, kind: str = "linear", T: int = 1000, beta_start: float = 1e-4,
                           beta_end: float = 0.02, cosine_s: float = 0.008, t_frac: float = 0.5, seed: int = 0):
    """ᾱ and log-SNR curves with a marker at t, the image noised to t, and its pixel histogram against N(0, 1).

    `t_frac` in [0, 1] picks t = round(t_frac · (T − 1)), so one slider works for every T.
    Returns the figure.
    """
    sched = build_schedule(kind, T, beta_start, beta_end, cosine_s)
    t = int(round(t_frac * (T - 1)))
    steps = np.arange(T)
    noise = torch.randn(image.shape, generator=torch.Generator().manual_seed(seed))
    x_t = sched.q_sample(image[None].float(), t, noise[None])[0]
    fig, ax = plt.subplots(1, 4, figsize=(13, 2.8), gridspec_kw=dict(width_ratios=[1.2, 1.2, 0.8, 1.2]))
    ax[0].plot(steps, sched.alpha_bars.numpy(), color="C0")
    ax[0].plot([t], [float(sched.alpha_bar(t))], "o", color="C3")
    ax[0].set(xlabel="timestep t", ylabel="ᾱ_t (signal variance kept)", ylim=(-0.02, 1.02))
    ax[1].plot(steps, sched.log_snr(torch.arange(T)).numpy(), color="C1")
    ax[1].plot([t], [float(sched.log_snr(t))], "o", color="C3")
    ax[1].axhline(0, color="grey", lw=0.6, ls="--")
    ax[1].set(xlabel="timestep t", ylabel="log-SNR λ_t")
    ax[2].imshow(to_display(x_t[None])[0], interpolation="nearest")
    ax[2].set_title(f"x_t at t={t}", fontsize=9)
    ax[2].set_axis_off()
    grid = np.linspace(-4, 4, 200)
    ax[3].hist(x_t.flatten().numpy(), bins=60, range=(-4, 4), density=True, color="C0", alpha=0.6, label="pixels of x_t")
    ax[3].plot(grid, np.exp(-grid**2 / 2) / math.sqrt(2 * math.pi), color="k", lw=1, label="N(0, 1)")
    ax[3].set(xlabel="pixel value", ylabel="density")
    ax[3].legend(fontsize=7, loc="upper right")
    ab = float(sched.alpha_bar(t))
    fig.suptitle(f"{kind}, T={T}:  ᾱ_t={ab:.4f}   √ᾱ_t={math.sqrt(ab):.3f}   SNR={ab / (1 - ab):.3g}", fontsize=10)
    fig.tight_layout()
    return fig


def schedule_explorer(image: Tensor):
    """The ipywidgets version of `draw_schedule_explorer`: kind, T, β range, cosine offset, t, noise seed."""
    import ipywidgets as W
    from IPython.display import display

    sliders = dict(
        kind=W.Dropdown(options=SCHEDULE_KINDS, value="linear", description="schedule"),
        T=W.IntSlider(1000, min=10, max=2000, step=10, description="T", continuous_update=False),
        beta_start=W.FloatLogSlider(1e-4, base=10, min=-5, max=-2, description="β start", continuous_update=False),
        beta_end=W.FloatLogSlider(0.02, base=10, min=-3, max=-0.5, description="β end", continuous_update=False),
        cosine_s=W.FloatSlider(0.008, min=0.0, max=0.2, step=0.002, description="cosine s", readout_format=".3f",
                               continuous_update=False),
        t_frac=W.FloatSlider(0.5, min=0.0, max=1.0, step=0.01, description="t / (T−1)", continuous_update=False),
        seed=W.IntSlider(0, min=0, max=20, description="noise seed", continuous_update=False),
    )

    def draw(**kw):
        draw_schedule_explorer(image, **kw)
        plt.show()

    out = W.interactive_output(draw, sliders)
    controls = W.VBox([W.HBox(list(sliders.values())[:4]), W.HBox(list(sliders.values())[4:])])
    display(controls, out)
