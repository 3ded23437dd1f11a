"""The course's own image dataset: procedural 32×32 RGB shapes with labels, attributes and captions.

Each image is one shape (SHAPES) in one colour (COLOURS), size (SIZES), grid position (POSITIONS,
with jitter) and rotation (degrees in [-45, 45)) on a background (BACKGROUNDS). Shapes are drawn
from signed distance functions with anti-aliased edges, then stored like a real dataset: 8-bit
values, returned as float32 in [-1, 1].

Determinism: image i of (seed, split) depends on nothing else. Its random numbers come from a
counter-based hash of (seed, split, i, stream), not from a sequential generator, so batches of any
size or composition agree, and no file or download is involved.

Splits: "train" never shows a colour×shape pair of HELD_OUT_PAIRS (its colour is drawn among the
other colours for that shape); "test" draws every pair uniformly, so about 5 test images in 64 show
a held-out pair, ready for testing compositional generalisation.

Speed: about 20,000 images/s on one CPU core. Rendering runs on one thread whatever torch's setting
(on cache-sized chunks, extra threads only wait); for more, use DataLoader workers.

Contrast: backgrounds are desaturated and either dark (luma ≤ 0.18) or light (luma ≥ 0.74); a light
one is only drawn behind the colours whose luma is at most 0.5, so no shape ever blends in.
"""
from __future__ import annotations

import os

import re
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor

from . import shape_render

SHAPES = shape_render.SHAPES
#: Shape colours; every one keeps a luma gap of at least 0.24 to every background it is drawn on.
COLOURS = ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "white")
SIZES = ("small", "medium", "large")
POSITIONS = ("top left", "top", "top right", "left", "centre", "right", "bottom left", "bottom", "bottom right")
BACKGROUNDS = shape_render.BACKGROUNDS
SPLITS = ("train", "test")
#: Default number of images per split in `ShapesDataset` and `load_images("shapes", ...)`.
SPLIT_SIZES = {"train": 50_000, "test": 10_000}
#: (colour, shape) pairs that never appear in the train split but do in the test split.
HELD_OUT_PAIRS = (("blue", "star"), ("red", "heart"), ("yellow", "moon"), ("green", "triangle"), ("purple", "circle"))
#: Keys of `ShapeBatch.attrs`: integer class ids, except "rotation" (float32 degrees in [-45, 45), anticlockwise).
ATTRIBUTES = ("shape", "colour", "size", "position", "background", "rotation")
#: The names behind each integer attribute's ids: VOCABULARIES["colour"][2] == "yellow".
VOCABULARIES = {"shape": SHAPES, "colour": COLOURS, "size": SIZES, "position": POSITIONS, "background": BACKGROUNDS}
IMAGE_SIZE = shape_render.IMAGE_SIZE

#: RGB in [0, 1] of each colour in COLOURS, shape (len(COLOURS), 3).
COLOUR_RGB = torch.tensor([
    [0.95, 0.20, 0.20], [1.00, 0.55, 0.10], [0.98, 0.88, 0.15], [0.15, 0.72, 0.25],
    [0.10, 0.85, 0.92], [0.20, 0.45, 1.00], [0.68, 0.32, 0.95], [0.96, 0.96, 0.96],
])
_SCALE_PX = torch.tensor([4.5, 6.5, 8.5])  # shape radius in pixels per size class, before ±8 % jitter
_LIGHT_OK = shape_render.luma(COLOUR_RGB) <= 0.5  # colours that may sit on a light background
_POSITION_PHRASES = ("in the top left", "at the top", "in the top right", "on the left", "in the centre",
                     "on the right", "in the bottom left", "at the bottom", "in the bottom right")
_CAPTION = re.compile(r"a (\w+) (\w+) (\w+) (.+) on a (\w+) background")
_MAX_INDEX = 2**32
_CHUNK = 512  # images rendered per vectorised pass


@dataclass
class ShapeBatch:
    """Rendered shapes images with everything needed to condition on them."""
    images: Tensor  # (N, 3, 32, 32) float32 in [-1, 1]
    labels: Tensor  # (N,) int64: the shape id, equal to attrs["shape"]
    attrs: dict[str, Tensor] = field(repr=False)  # ATTRIBUTES -> (N,) int64 ids, "rotation" float32 degrees
    captions: list[str] = field(repr=False)  # English captions, see `caption_words`
    indices: Tensor = field(repr=False)  # (N,) int64: which images of (seed, split) these are

    def __len__(self) -> int:
        return self.images.shape[0]


# --- counter-based random numbers -------------------------------------------------------------

def _mul32(x, c: int):
    """(x * c) mod 2**32 for x < 2**32, split in 16-bit halves so int64 never overflows."""
    return (x * (c & 0xFFFF) + (((x * (c >> 16)) & 0xFFFF) << 16)) & 0xFFFFFFFF


def _hash32(x):
    """A 32-bit integer hash (Wellons' lowbias32) of Python ints or int64 tensors in [0, 2**32)."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def _uniforms(indices: Tensor, split: str, seed: int, count: int) -> Tensor:
    """(N, count) float32 uniforms in [0, 1), a pure function of (seed, split, index, column)."""
    k1 = _hash32(_hash32(seed) ^ (0x51ED27 + SPLITS.index(split)))
    k2 = _hash32(k1 ^ 0x68E31DA4)
    a, b = _hash32(indices ^ k1), _hash32(indices ^ k2)  # two keys: (seed, split, i) collide with p ~ 2**-64
    streams = torch.tensor([_hash32(0x9E3779B9 * (j + 1) & 0xFFFFFFFF) for j in range(count)])
    bits = _hash32(_hash32(a[:, None] ^ streams) ^ b[:, None])
    return (bits >> 8).float() / 2**24


def _choose(u: Tensor, allowed: Tensor) -> Tensor:
    """For each row, one of the True columns of `allowed` (N, K), picked uniformly by u in [0, 1)."""
    count = allowed.sum(1)
    rank = (u * count).long().clamp(max=count - 1)  # pick the rank-th allowed column
    return (allowed.cumsum(1) <= rank[:, None]).sum(1)


# --- attributes, then pixels ------------------------------------------------------------------

def _held_out_table() -> Tensor:
    """(colours, shapes) bool: True for the pairs in HELD_OUT_PAIRS."""
    table = torch.zeros(len(COLOURS), len(SHAPES), dtype=torch.bool)
    for colour, shape in HELD_OUT_PAIRS:
        table[COLOURS.index(colour), SHAPES.index(shape)] = True
    return table


_HELD_OUT = _held_out_table()


def _draw_attributes(u: Tensor, split: str) -> dict[str, Tensor]:
    """The public attributes of each image from its uniforms (columns 0-5)."""
    n = u.shape[0]
    shape = (u[:, 0] * len(SHAPES)).long()
    colours_ok = torch.ones(n, len(COLOURS), dtype=torch.bool)
    if split == "train":  # 1. train: never a held-out pair
        colours_ok = ~_HELD_OUT[:, shape].T
    colour = _choose(u[:, 1], colours_ok)
    backgrounds_ok = torch.ones(n, len(BACKGROUNDS), dtype=torch.bool)
    backgrounds_ok[:, BACKGROUNDS.index("light")] = _LIGHT_OK[colour]  # 2. keep contrast
    return {
        "shape": shape,
        "colour": colour,
        "size": (u[:, 2] * len(SIZES)).long(),
        "position": (u[:, 3] * len(POSITIONS)).long(),
        "background": _choose(u[:, 4], backgrounds_ok),
        "rotation": 90 * u[:, 5] - 45,
    }


def _placement(attrs: dict[str, Tensor], u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Radius and centre (x, y) in pixels: the position's grid cell plus jitter, always inside the image."""
    radius = _SCALE_PX[attrs["size"]] * (0.92 + 0.16 * u[:, 6])
    room = 0.5 * (IMAGE_SIZE - 1) - 1 - radius  # how far the centre may move from the middle
    col, row = attrs["position"] % 3 - 1, attrs["position"] // 3 - 1
    x = 0.5 * (IMAGE_SIZE - 1) + room * (0.85 * col + 0.3 * (u[:, 7] - 0.5))
    y = 0.5 * (IMAGE_SIZE - 1) + room * (0.85 * row + 0.3 * (u[:, 8] - 0.5))
    return radius, x, y


@contextmanager
def _one_thread():
    """Run torch ops on one thread: on cache-sized chunks, extra threads cost more in waiting than they save."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@_one_thread()
def _render(indices: Tensor, split: str, seed: int) -> ShapeBatch:
    # columns of u: 0-5 attributes, 6-8 size and position jitter, 9 background tone, 10-20 background details
    u = _uniforms(indices, split, seed, 21)
    attrs = _draw_attributes(u, split)
    images = torch.empty(indices.shape[0], 3, IMAGE_SIZE, IMAGE_SIZE)
    for a in range(0, indices.shape[0], _CHUNK):  # chunks stay in cache: several times faster than one pass
        b = a + _CHUNK
        _draw(images[a:b], {k: v[a:b] for k, v in attrs.items()}, u[a:b])
    return ShapeBatch(images, attrs["shape"].clone(), attrs, captions_from_attrs(attrs), indices)


def _draw(out: Tensor, attrs: dict[str, Tensor], u: Tensor) -> None:
    """Write the images with these attributes into `out` (n, 3, 32, 32), quantised to 8-bit levels."""
    radius, x, y = _placement(attrs, u)
    light = (attrs["background"] == BACKGROUNDS.index("light")) | (_LIGHT_OK[attrs["colour"]] & (u[:, 9] < 0.5))
    light &= attrs["background"] != BACKGROUNDS.index("dark")  # patterned ones: either tone the colour allows
    shape_render.background(attrs["background"], light, u[:, 10:21], out=out)
    alpha = shape_render.coverage(attrs["shape"], radius, x, y, attrs["rotation"])
    out.lerp_(COLOUR_RGB[attrs["colour"]][:, :, None, None], alpha[:, None])
    out.mul_(255).round_().div_(127.5).sub_(1)  # 8-bit levels, as in a real dataset, then [-1, 1]


# --- public API -------------------------------------------------------------------------------

def _check_split_seed(split: str, seed: int) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an int in [0, 2**32), got {seed!r}")


def _check_n(n, name: str = "n") -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"{name} must be a non-negative int, got {n!r}")


BYTES_PER_IMAGE = 3 * IMAGE_SIZE * IMAGE_SIZE * 4 + 200  # float32 pixels, plus attributes and caption (about)


def _check_memory(n: int) -> None:
    """Refuse, with the memory it would take, a batch larger than this machine's memory (before allocating it)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not a POSIX system: let the allocator decide
        return
    need = n * BYTES_PER_IMAGE
    if need > total:
        raise MemoryError(f"make_shapes({n:,}) would need about {need / 1e9:,.1f} GB for its images, more than this "
                          f"machine's {total / 1e9:.0f} GB: ask for fewer, or render in chunks (start=, or ShapesDataset)")


def render_shapes(indices, split: str = "train", seed: int = 0) -> ShapeBatch:
    """The images numbered `indices` (ints in [0, 2**32)) of the given split and seed."""
    _check_split_seed(split, seed)
    indices = torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
    if indices.numel() and (indices.min() < 0 or indices.max() >= _MAX_INDEX):
        raise ValueError(f"indices must lie in [0, 2**32), got values from {indices.min()} to {indices.max()}")
    return _render(indices, split, seed)


def make_shapes(n: int, split: str = "train", seed: int = 0, start: int = 0) -> ShapeBatch:
    """Images start, start+1, ..., start+n-1 of (seed, split) with labels, attributes and captions."""
    _check_n(n)
    _check_n(start, "start")
    _check_memory(n)
    return render_shapes(torch.arange(start, start + n), split, seed)


def shape_images(n: int, split: str = "train", seed: int = 0) -> Tensor:
    """Just the first `n` images of (seed, split): an (n, 3, 32, 32) float32 tensor in [-1, 1]."""
    return make_shapes(n, split, seed).images


def sample_shapes(batch_size: int, generator: torch.Generator, split: str = "train", seed: int = 0,
                  n: int | None = None) -> ShapeBatch:
    """A random batch from the first `n` images (default SPLIT_SIZES[split]), indices drawn from `generator`.

    For training loops that want captions or attributes: `batch = sample_shapes(128, g)`.
    """
    _check_split_seed(split, seed)
    _check_n(batch_size, "batch_size")
    n = SPLIT_SIZES[split] if n is None else n
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ValueError(f"n must be a positive int (the number of images to sample from), got {n!r}")
    return render_shapes(torch.randint(0, n, (batch_size,), generator=generator), split, seed)


class ShapesDataset(torch.utils.data.Dataset):
    """The first `n` images of (seed, split) as (image, label) pairs, rendered on demand.

    A DataLoader fetches whole batches through `__getitems__`, so batches are rendered
    vectorised. `batch(indices)` returns a `ShapeBatch` with attributes and captions.
    """

    def __init__(self, n: int | None = None, split: str = "train", seed: int = 0):
        _check_split_seed(split, seed)
        self.n = SPLIT_SIZES[split] if n is None else n
        _check_n(self.n)
        self.split, self.seed = split, seed

    def __len__(self) -> int:
        return self.n

    def batch(self, indices) -> ShapeBatch:
        indices = torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
        if indices.numel() and (indices.min() < -self.n or indices.max() >= self.n):
            raise IndexError(f"indices must lie in [-{self.n}, {self.n}) for this dataset of {self.n} images")
        return render_shapes(indices % max(self.n, 1), self.split, self.seed)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        b = self.batch([index])
        return b.images[0], b.labels[0]

    def __getitems__(self, indices: list[int]) -> list[tuple[Tensor, Tensor]]:
        b = self.batch(indices)
        return list(zip(b.images, b.labels))


# --- captions and held-out pairs --------------------------------------------------------------

def captions_from_attrs(attrs: dict[str, Tensor]) -> list[str]:
    """One caption per image: "a small red triangle in the top left on a dark background"."""
    rows = zip(*(attrs[k].tolist() for k in ("size", "colour", "shape", "position", "background")))
    return [f"a {SIZES[s]} {COLOURS[c]} {SHAPES[k]} {_POSITION_PHRASES[p]} on a {BACKGROUNDS[b]} background"
            for s, c, k, p, b in rows]


def parse_caption(caption: str) -> dict[str, int]:
    """The attribute ids a caption states (all of ATTRIBUTES except rotation); ValueError if it is not one."""
    m = _CAPTION.fullmatch(caption.strip())
    names = ("size", "colour", "shape", "position", "background")  # in caption order
    vocab = [_POSITION_PHRASES if name == "position" else VOCABULARIES[name] for name in names]
    if m is None or any(word not in words for word, words in zip(m.groups(), vocab)):
        raise ValueError(f"caption is not one this dataset's grammar produces: {caption!r}")
    return {name: words.index(word) for name, word, words in zip(names, m.groups(), vocab)}


def caption_words() -> tuple[str, ...]:
    """Every word the caption grammar can produce, sorted: the vocabulary of a text encoder."""
    phrases = ("a", "on", "background", *SIZES, *COLOURS, *SHAPES, *_POSITION_PHRASES, *BACKGROUNDS)
    return tuple(sorted({word for phrase in phrases for word in phrase.split()}))


def is_held_out(colour: str | int, shape: str | int) -> bool:
    """True if the (colour, shape) pair, given by names or ids, is in HELD_OUT_PAIRS."""
    return bool(_HELD_OUT[_lookup(colour, COLOURS, "colour"), _lookup(shape, SHAPES, "shape")])


def _lookup(value: str | int, names: tuple[str, ...], arg: str) -> int:
    """The id of `value`, given as a name in `names` or as an id; ValueError naming `arg` otherwise."""
    if isinstance(value, str) and value in names:
        return names.index(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
        return value
    raise ValueError(f"{arg} must be one of {names} or an id below {len(names)}, got {value!r}")


def held_out_mask(attrs: dict[str, Tensor]) -> Tensor:
    """(N,) bool: which images of a `ShapeBatch.attrs` show a held-out colour×shape pair."""
    return _HELD_OUT[attrs["colour"], attrs["shape"]]
