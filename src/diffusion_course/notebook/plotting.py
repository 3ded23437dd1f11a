"""Plotting helpers for the notebooks: image grids, smoothed curves and small animations."""
from __future__ import annotations

from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
from torch import Tensor


def to_display(images: Tensor) -> np.ndarray:
    """(N, C, H, W) images in [-1, 1] → (N, H, W, 3) floats in [0, 1] for imshow (1 channel → grey)."""
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    x = images.detach().float().cpu().clamp(-1, 1).add(1).div(2)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x.permute(0, 2, 3, 1).numpy()


def image_grid(images: Tensor, nrow: int = 8, pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Tile (N, C, H, W) images in [-1, 1] into one (rows·H, nrow·W, 3) array with `pad` pixels between."""
    arr = to_display(images)
    n, h, w, _ = arr.shape
    ncol = min(nrow, n)
    rows = -(-n // ncol)
    grid = np.full((rows * (h + pad) - pad, ncol * (w + pad) - pad, 3), pad_value, dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, ncol)
        grid[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = arr[i]
    return grid


def show_images(images: Tensor, nrow: int = 8, title: str | None = None, ax=None, scale: float = 0.6):
    """Show a grid of images in [-1, 1]; returns the matplotlib Axes."""
    grid = image_grid(images, nrow)
    if ax is None:
        _, ax = plt.subplots(figsize=(scale * grid.shape[1] / 16, scale * grid.shape[0] / 16))
    else:
        ax.clear()  # redrawing (e.g. animation frames) replaces the image instead of stacking another
    ax.imshow(grid, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def smooth(values: Sequence[float], window: int = 50) -> np.ndarray:
    """Moving average over `window` points (shorter at the start), for noisy loss curves."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    idx = np.arange(1, v.size + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def animate(draw: Callable[[int], None], n_frames: int, fig, interval_ms: int = 150, dpi: int = 60):
    """An HTML/JavaScript player (with a slider) for `draw(frame)` on `fig`; plays in any notebook, offline.

    Keep figures small and frames few (≤ ~30): every frame is embedded in the notebook as a JPEG at `dpi` (noisy
    images compress poorly as PNG: JPEG keeps a 20-frame animation to a few hundred kB).
    """
    from IPython.display import HTML
    from matplotlib import animation

    fig.set_dpi(dpi)
    anim = animation.FuncAnimation(fig, draw, frames=n_frames, interval=interval_ms)
    with plt.rc_context({"animation.frame_format": "jpeg"}):
        html = anim.to_jshtml(default_mode="once")
    plt.close(fig)
    return HTML(html)


def trajectory_frames(steps: list, n_frames: int) -> list[int]:
    """Indices of ~n_frames steps spread over a trajectory, always including the first and last."""
    if not steps:
        return []
    idx = np.unique(np.linspace(0, len(steps) - 1, min(n_frames, len(steps))).round().astype(int))
    return idx.tolist()


def to_numpy(x: Tensor) -> np.ndarray:
    return x.detach().float().cpu().numpy()


