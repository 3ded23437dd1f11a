"""Pixels for the shapes dataset: signed distance functions, anti-aliased coverage and backgrounds.

A signed distance function (SDF) gives, for every point, its distance to the shape's edge:
negative inside, positive outside. Scaled to pixels, `clamp(0.5 - d, 0, 1)` is then the fraction
of each pixel the shape covers, which gives smooth (anti-aliased) edges for free. The SDFs follow
Inigo Quilez's 2-D distance functions (iquilezles.org/articles/distfunctions2d); each works in a
local frame with y pointing up in which the shape fits the unit disc.

`shapes.py` decides what to draw (attributes, captions, splits); this module only draws it.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

IMAGE_SIZE = 32
SHAPES = ("circle", "square", "triangle", "diamond", "star", "heart", "cross", "moon")
BACKGROUNDS = ("dark", "light", "gradient", "striped", "checked")

_MID = 0.5 * (IMAGE_SIZE - 1)  # the image centre, in pixel coordinates
_X = torch.arange(IMAGE_SIZE, dtype=torch.float32).reshape(1, 1, -1)  # column of each pixel
_Y = torch.arange(IMAGE_SIZE, dtype=torch.float32).reshape(1, -1, 1)  # row of each pixel (down)


def luma(rgb: Tensor) -> Tensor:
    """Perceived brightness (Rec. 601 luma) of RGB values in [0, 1] along the last axis."""
    return rgb @ torch.tensor([0.299, 0.587, 0.114])


# --- signed distance functions (local frame, unit disc) ---------------------------------------

def _box(x: Tensor, y: Tensor, bx: float, by: float) -> Tensor:
    qx, qy = x.abs() - bx, y.abs() - by
    return torch.hypot(qx.clamp(min=0), qy.clamp(min=0)) + torch.maximum(qx, qy).clamp(max=0)


def _circle(x, y):
    return torch.hypot(x, y) - 0.9


def _square(x, y):
    return _box(x, y, 0.68, 0.68)


def _triangle(x, y):
    # an equilateral triangle pointing up, circumradius 1.05: the largest of its three edge distances
    edges = [x * math.cos(a) + y * math.sin(a) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
    return torch.maximum(torch.maximum(edges[0], edges[1]), edges[2]) - 0.525


def _diamond(x, y):
    # a rhombus with half-diagonals 0.6 (across) and 1.0 (up): distance to the edge line x/0.6 + y/1 = 1
    return (x.abs() + 0.6 * y.abs() - 0.6) / math.hypot(1.0, 0.6)


def _star(x, y, points: int = 5, m: float = 3.0):
    # Quilez's sdStar (m from 2, a pentagon, to 5, thin spikes): fold into one sector, measure to one edge
    an, en = math.pi / points, math.pi / m
    bn = torch.remainder(torch.atan2(x, y), 2 * an) - an
    r = torch.hypot(x, y)
    px = r * torch.cos(bn) - math.cos(an)
    py = r * torch.sin(bn).abs() - math.sin(an)
    h = (-(px * math.cos(en) + py * math.sin(en))).clamp(0, math.sin(an) / math.sin(en))
    px, py = px + math.cos(en) * h, py + math.sin(en) * h
    return torch.hypot(px, py) * torch.sign(px)


def _heart(x, y, k: float = 0.62):
    # Quilez's sdHeart (tip at the origin, height 1.1), recentred and scaled by 1/k to fill the unit disc
    qx, qy = x.abs() * k, y * k + 0.55
    lobe = torch.hypot(qx - 0.25, qy - 0.75) - math.sqrt(2) / 4
    t = 0.5 * (qx + qy).clamp(min=0)
    to_tip = torch.minimum(qx.square() + (qy - 1).square(), (qx - t).square() + (qy - t).square())
    lower = to_tip.sqrt() * torch.sign(qx - qy)
    return torch.where(qx + qy > 1, lobe, lower) / k


def _cross(x, y):
    return torch.minimum(_box(x, y, 0.9, 0.3), _box(x, y, 0.3, 0.9))


def _moon(x, y):
    # a disc minus a smaller disc shifted up and right
    return torch.maximum(torch.hypot(x, y) - 0.9, 0.75 - torch.hypot(x - 0.4, y - 0.25))


_SDFS = (_circle, _square, _triangle, _diamond, _star, _heart, _cross, _moon)


def _frame(x0: Tensor, y0: Tensor, cos: Tensor, sin: Tensor, scale: Tensor) -> tuple[Tensor, Tensor]:
    """(n, 32, 32) local coordinates of every pixel: centred on (x0, y0), y up, rotated, divided by scale.

    Each coordinate is a per-column term plus a per-row term, so only the final sums are full-size.
    """
    col = (_X - x0[:, None, None]) / scale[:, None, None]  # (n, 1, 32)
    row = (y0[:, None, None] - _Y) / scale[:, None, None]  # (n, 32, 1), y up
    c, s = cos[:, None, None], sin[:, None, None]
    return c * col + s * row, c * row - s * col


def coverage(shape: Tensor, radius: Tensor, x: Tensor, y: Tensor, rotation: Tensor) -> Tensor:
    """(N, 32, 32) fraction of each pixel covered by each shape.

    shape: (N,) ids into SHAPES; radius: (N,) pixels; x, y: (N,) centre column and row;
    rotation: (N,) degrees, counter-clockwise on screen.
    """
    alpha = torch.empty(shape.shape[0], IMAGE_SIZE, IMAGE_SIZE)
    theta = torch.deg2rad(rotation)
    cos, sin = torch.cos(theta), torch.sin(theta)
    for k, sdf in enumerate(_SDFS):  # one vectorised pass per shape kind
        idx = (shape == k).nonzero().squeeze(1)
        if idx.numel() > 0:
            r = radius[idx]
            distance = sdf(*_frame(x[idx], y[idx], cos[idx], sin[idx], r))
            alpha[idx] = distance.mul_(-r[:, None, None]).add_(0.5).clamp_(0, 1)  # pixels in from the edge + ½
    return alpha


# --- backgrounds --------------------------------------------------------------------------------

def _tone(light: Tensor, u: Tensor) -> Tensor:
    """(N, 3) muted colours with luma in [0.80, 0.90] where `light`, else in [0.04, 0.12]; u is (N, 4).

    A random tint scales each channel's distance from black (dark) or white (light) by 0.2 to 1.8;
    the tint has zero luma, so it changes the hue but leaves the luma where it was drawn.
    """
    grey = torch.where(light, 0.80 + 0.10 * u[:, 3], 0.04 + 0.08 * u[:, 3])[:, None]
    tint = 0.8 * (u[:, :3] - 0.5)
    tint = 1 + tint - luma(tint)[:, None]
    return torch.where(light[:, None], 1 - (1 - grey) * tint, grey * tint)


def _pattern(kind: Tensor, u: Tensor) -> Tensor:
    """(N, 32, 32) weight in [0, 1] of the second background colour (0 for solid kinds); u is (N, 3)."""
    w = torch.zeros(kind.shape[0], IMAGE_SIZE, IMAGE_SIZE)
    patterned = (kind >= BACKGROUNDS.index("gradient")).nonzero().squeeze(1)
    if patterned.numel() == 0:
        return w
    kind, u = kind[patterned, None, None], u[patterned]
    angle = 2 * math.pi * u[:, 0]
    mid, one = torch.full_like(angle, _MID), torch.ones_like(angle)
    along, across = _frame(mid, mid, torch.cos(angle), torch.sin(angle), one)  # pixel axes, rotated by angle
    freq = (2 * math.pi / (4 + 4 * u[:, 1]))[:, None, None]  # stripes and checks 4 to 8 pixels wide
    wave = torch.sin(freq * along + 2 * math.pi * u[:, 2, None, None])
    w[patterned] = torch.where(
        kind == BACKGROUNDS.index("gradient"), 0.5 + along / (2 * _MID * math.sqrt(2)),
        torch.where(kind == BACKGROUNDS.index("striped"), 1.5 * wave, 2.0 * wave * torch.sin(freq * across)).add_(0.5),
    ).clamp_(0, 1)
    return w


def background(kind: Tensor, light: Tensor, u: Tensor, out: Tensor | None = None) -> Tensor:
    """(N, 3, 32, 32) backgrounds of the given kinds (ids into BACKGROUNDS) and tones; u is (N, 11) uniforms.

    Dark ones keep luma at most 0.18 and light ones at least 0.74 everywhere: patterns blend the
    first colour with a second one of the same tone, 0.06 closer to mid-grey (gradients also retint it).
    """
    first = _tone(light, u[:, 0:4])
    shift = torch.where(light, -0.06, 0.06)[:, None]
    gradient = (kind == BACKGROUNDS.index("gradient"))[:, None]
    second = torch.where(gradient, _tone(light, u[:, 4:8]), first) + shift
    w = _pattern(kind, u[:, 8:11])[:, None]
    return torch.addcmul(first[:, :, None, None], w, (second - first)[:, :, None, None], out=out)
